"""The OpenAI-compatible client against a real HTTP server in this process."""

import threading

import pytest

from tests.helpers import openai_client
from tests.reports.local_http import LocalChatServer, chat_reply


class FlakyServer(LocalChatServer):
    """Answers /v1/chat/completions; the first calls of each prompt fail in a scripted way."""

    def __init__(self, script):
        self.script = script  # list of failure kinds consumed in order: "500", "slow", "garbage", "400"
        self.lock = threading.Lock()
        self.seen = []
        self.released = threading.Event()  # a "slow" call answers only once the test is over
        super().__init__(self.respond)

    def close(self):
        self.released.set()
        super().close()

    def respond(self, body):
        with self.lock:
            kind = self.script.pop(0) if self.script else "ok"
            self.seen.append(body)
        if kind == "slow":
            self.released.wait(60)
        if kind in ("500", "400"):
            return int(kind), None
        return 200, b"{not json" if kind == "garbage" else chat_reply("echo: " + body["messages"][-1]["content"])


@pytest.fixture
def server_factory():
    made = []

    def make(script):
        s = FlakyServer(list(script))
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


def _items(n):
    return [([{"role": "user", "content": f"prompt {i}"}], i) for i in range(n)]


def test_results_come_back_in_order(server_factory):
    srv = server_factory([])
    llm = openai_client(srv.url, "m", concurrency=4)
    assert llm.generate_messages(_items(10)) == [f"echo: prompt {i}" for i in range(10)]
    assert srv.seen[0]["model"] == "m" and "seed" in srv.seen[0]


def test_500s_timeouts_and_garbage_are_retried_and_counted(server_factory):
    srv = server_factory(["500", "slow", "garbage", "500"])
    # The timeout leaves the other calls seconds on two loaded cores; the slow one never answers in time.
    llm = openai_client(srv.url, "m", concurrency=1, timeout_s=2.0, backoff_s=0.01, max_retries=6)
    out = llm.generate_messages(_items(3))
    assert out == [f"echo: prompt {i}" for i in range(3)]
    c = llm.counters()
    assert c["llm_http_500"] == 2 and c["llm_timeouts"] == 1 and c["llm_malformed"] == 1
    assert c["llm_retries"] == 4


def test_giving_up_and_client_errors_return_none(server_factory):
    srv = server_factory(["500"] * 3 + ["400"])
    llm = openai_client(srv.url, "m", concurrency=1, backoff_s=0.01, max_retries=2)
    assert llm.generate_messages(_items(2)) == [None, None]
    c = llm.counters()
    assert c["llm_gave_up"] == 1 and c["llm_http_400"] == 1


def test_unreachable_server_is_counted_not_raised():
    llm = openai_client("http://127.0.0.1:9/v1", "m", max_retries=1, backoff_s=0.01, timeout_s=1)
    assert llm.generate_messages(_items(1)) == [None]
    assert llm.counters()["llm_connection_errors"] == 2
