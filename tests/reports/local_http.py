"""A chat-completions endpoint served from a thread of the test process (no network needed)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def chat_reply(content: str) -> bytes:
    return json.dumps({"choices": [{"message": {"content": content}}]}).encode()


class LocalChatServer:
    """`respond(body) -> (status, payload bytes or None)` answers each POSTed JSON body; `url` is the
    OpenAI-style base URL (…/v1); `authorizations` lists the Authorization header of each request."""

    def __init__(self, respond, port: int = 0):
        self.authorizations: list[str | None] = []
        authorizations = self.authorizations

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                authorizations.append(self.headers.get("Authorization"))
                status, payload = respond(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                try:
                    self.send_response(status)
                    if payload is None:
                        self.end_headers()
                        return
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (what a timeout test wants)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)  # port: 0 picks a free one
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
