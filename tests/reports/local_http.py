"""A chat-completions endpoint served from a thread of the test process (no network needed)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def chat_reply(content: str) -> bytes:
    return json.dumps({"choices": [{"message": {"content": content}}]}).encode()


def openai_error(message: str, code: str | None = None, type_: str = "invalid_request_error") -> bytes:
    """An error body as the OpenAI API writes it."""
    return json.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}}).encode()


def vllm_error(message: str, status: int = 400, type_: str = "BadRequestError") -> bytes:
    """An error body as vLLM's OpenAI-compatible server writes it."""
    return json.dumps({"object": "error", "message": message, "type": type_, "param": None, "code": status}).encode()


# What vLLM answers for a prompt longer than the context, and for a model it does not serve (HTTP 404).
CONTEXT_TOO_LONG = (
    "This model's maximum context length is 4096 tokens. However, you requested 5120 tokens "
    "(4736 in the messages, 384 in the completion). Please reduce the length of the messages "
    "or completion."
)
NO_SUCH_MODEL = "The model `llama-3.1-8b` does not exist."


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
