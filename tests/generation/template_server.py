"""An OpenAI-compatible chat server that writes reports as the phantom template LLM does, from the
entities its prompt lists: the answer depends only on the prompt and the seed (as vLLM's seeded
sampling does), so a generation against it is reproducible. It can go down (its port refuses
connections) and come back on the same port."""

from __future__ import annotations

import threading
import time

from syncxr.reports.requests import TYPE_HINTS, ReportRequest
from syncxr.reports.template_llm import TemplateLLM
from tests.reports.local_http import LocalChatServer, chat_reply

HINT_TYPES = {hint: etype for etype, hint in TYPE_HINTS.items()}


def entities_of(prompt: str) -> list[dict]:
    """The entities a report prompt lists ("- <type hint>: a, b")."""
    out = []
    for line in prompt.splitlines():
        hint, _, names = line.removeprefix("- ").partition(": ")
        if line.startswith("- ") and hint in HINT_TYPES:
            out += [{"name": n, "type": HINT_TYPES[hint]} for n in names.split(", ")]
    return out


class TemplateChatServer:
    """`down_after`: after answering that many requests the server goes down for `down_for` seconds
    (connections refused), then comes back on the same port. `requests` counts answered requests."""

    def __init__(self, error_rate: float = 0.1, down_after: int | None = None, down_for: float = 0.0):
        self.writer = TemplateLLM(error_rate=error_rate)
        self.down_after, self.down_for = down_after, down_for
        self.lock = threading.Lock()
        self.requests, self.outages, self.authorizations = 0, 0, []
        self.server = LocalChatServer(self.respond)
        self.url, self.port = self.server.url, self.server.httpd.server_address[1]

    def respond(self, body):
        prompt = body["messages"][-1]["content"]
        section = "findings" if prompt.startswith("Write the FINDINGS") else "impression"
        text = self.writer._write(ReportRequest("x", section, entities_of(prompt), seed=body["seed"]))
        with self.lock:
            self.requests += 1
            if self.down_after is not None and self.requests == self.down_after:
                threading.Thread(target=self._outage, daemon=True).start()
        return 200, chat_reply(text)

    def _outage(self):
        self.outages += 1
        self.authorizations += self.server.authorizations
        self.server.close()
        time.sleep(self.down_for)
        self.server = LocalChatServer(self.respond, port=self.port)

    def seen_authorizations(self) -> list:
        return self.authorizations + self.server.authorizations

    def close(self):
        self.server.close()
