"""The OpenAI-compatible client against a real HTTP server in this process."""

import threading
import time

import pytest

from syncxr.reports.backend_failure import BackendFailure, BackendMisconfigured
from tests.helpers import openai_client
from tests.reports.local_http import (
    CONTEXT_TOO_LONG,
    NO_SUCH_MODEL,
    LocalChatServer,
    chat_reply,
    openai_error,
    vllm_error,
)


class FlakyServer(LocalChatServer):
    """Answers /v1/chat/completions; the first calls of each prompt fail in a scripted way."""

    def __init__(self, script):
        self.script = script  # failure kinds consumed in order: "500", "slow", "garbage", "400", "empty"
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
        if kind == "empty":
            return 200, chat_reply("")
        return 200, b"{not json" if kind == "garbage" else chat_reply(f"echo: {body['messages'][-1]['content']}")


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


class ByPromptServer(LocalChatServer):
    """Answers each prompt with the HTTP status `statuses` gives it (200: an echo), or with the
    (status, body) it gives; counts requests and the most it had in flight at once."""

    def __init__(self, statuses=None, delay: float = 0.0):
        self.statuses, self.delay = statuses or {}, delay
        self.lock, self.in_flight, self.max_in_flight, self.n = threading.Lock(), 0, 0, 0
        super().__init__(self.respond)

    def respond(self, body):
        prompt = body["messages"][-1]["content"]
        with self.lock:
            self.n += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        time.sleep(self.delay)
        with self.lock:
            self.in_flight -= 1
        status = self.statuses.get(prompt, 200)
        if isinstance(status, tuple):
            return status
        return (200, chat_reply("echo: " + prompt)) if status == 200 else (status, None)


def test_backend_failures_are_told_apart_from_refused_requests():
    srv = ByPromptServer({"prompt 0": 503, "prompt 1": 400, "prompt 2": 401})
    try:
        llm = openai_client(srv.url, "m", concurrency=2, backoff_s=0.01, max_retries=2)
        out = llm.generate_messages(_items(4))
    finally:
        srv.close()
    # 503 on every try: the backend failed (the sample is kept for a re-run); 400: the request itself
    # was refused (a failed attempt); 401: the client is set up wrongly (not retried, kept for a re-run).
    assert out == [BackendFailure("http_503"), None, BackendFailure("http_401"), "echo: prompt 3"]
    c = llm.counters()
    assert c["llm_http_503"] == 3 and c["llm_http_400"] == 1 and c["llm_http_401"] == 1
    assert c["llm_gave_up"] == 2 and c["llm_requests"] == 3 + 1 + 1 + 1


def test_a_404_that_names_no_model_stays_a_backend_failure():
    srv = ByPromptServer({"prompt 0": (404, b'{"detail": "Not Found"}')})  # a wrong URL or route
    try:
        out = openai_client(srv.url, "m", backoff_s=0.01).generate_messages(_items(2))
    finally:
        srv.close()
    assert out == [BackendFailure("http_404"), "echo: prompt 1"]


def test_unreachable_server_is_a_backend_failure_not_an_exception():
    llm = openai_client("http://127.0.0.1:9/v1", "m", max_retries=1, backoff_s=0.01, timeout_s=1)
    assert llm.generate_messages(_items(1)) == [BackendFailure("connection_errors")]
    assert llm.counters()["llm_connection_errors"] == 2


def test_requests_are_spread_over_servers_with_a_bound_per_server():
    a, b = ByPromptServer(delay=0.05), ByPromptServer(delay=0.05)
    try:
        llm = openai_client(a.url, "m", base_urls=[a.url, b.url], concurrency=3, backoff_s=0.01)
        out = llm.generate_messages(_items(24))
    finally:
        a.close()
        b.close()
    assert out == [f"echo: prompt {i}" for i in range(24)]
    assert a.n == b.n == 12
    assert a.max_in_flight <= 3 and b.max_in_flight <= 3 and max(a.max_in_flight, b.max_in_flight) >= 2


def test_a_dead_servers_requests_go_to_the_others():
    live = ByPromptServer()
    dead = ByPromptServer()
    dead.close()  # its port now refuses connections
    try:
        llm = openai_client(live.url, "m", base_urls=[dead.url, live.url], concurrency=4, max_retries=1, backoff_s=0.5)
        first = llm.generate_messages(_items(8))
        second = llm.generate_messages(_items(8))
    finally:
        live.close()
    assert first == second == [f"echo: prompt {i}" for i in range(8)]
    c = llm.counters()
    # The first call found the dead server (each of its requests retried on the live one); for a
    # while after that, new requests skip it.
    assert c["llm_connection_errors"] >= 1 and c["llm_requests_server0"] <= 4
    assert live.n == 16 and "llm_gave_up" not in c


def test_an_empty_answer_is_retried_and_a_backend_failure_when_it_stays_empty(server_factory):
    # HTTP 200 with no text is the server failing, not a verdict on the prompt (the audit saw 50 of
    # 100 rows dropped for good, rc 0).
    srv = server_factory(["empty", "ok", "empty", "empty", "empty"])
    llm = openai_client(srv.url, "m", concurrency=1, backoff_s=0.01, max_retries=1)
    assert llm.generate_messages(_items(1)) == ["echo: prompt 0"]  # the retry got the text
    assert llm.generate_messages(_items(1)) == [BackendFailure("empty_answer")]
    assert llm.counters()["llm_empty_answer"] == 3 and "llm_http_400" not in llm.counters()


@pytest.mark.parametrize(
    "status, body",
    [
        (404, vllm_error(NO_SUCH_MODEL, 404, "NotFoundError")),
        (400, openai_error("model 'x' not found", code="model_not_found")),
    ],
)
def test_a_model_the_server_does_not_serve_stops_with_its_message(status, body):
    srv = ByPromptServer({"prompt 1": (status, body)})
    try:
        llm = openai_client(srv.url, "llama-3.1-8b", concurrency=2, backoff_s=0.01)
        with pytest.raises(
            BackendMisconfigured,
            match=rf"HTTP {status}: .*(does not exist|not found).*model="
            r"'llama-3.1-8b'.*re-run the same command",
        ):
            llm.generate_messages(_items(3))  # even among answered requests: the body names the model
    finally:
        srv.close()


@pytest.mark.parametrize(
    "body", [vllm_error("temperature must be non-negative, got -1.0."), vllm_error(CONTEXT_TOO_LONG)]
)  # e.g. max_tokens above the context
def test_every_request_refused_before_any_answer_is_the_setup_not_the_prompts(body):
    refuse_all = ByPromptServer({f"prompt {i}": (400, body) for i in range(4)})
    try:
        llm = openai_client(refuse_all.url, "m", concurrency=2)
        with pytest.raises(BackendMisconfigured, match="all 4 requests of 4 different prompts"):
            llm.generate_messages(_items(4))
        # Once a request was answered, the setup works: the same refusals are verdicts on their prompts.
        assert llm.generate_messages(_items(5)) == [None] * 4 + ["echo: prompt 4"]
        assert llm.generate_messages(_items(4)) == [None] * 4
    finally:
        refuse_all.close()


def test_a_prompt_too_long_for_the_context_is_a_verdict_on_that_prompt():
    srv = ByPromptServer(
        {
            "prompt 2": (400, openai_error(CONTEXT_TOO_LONG, code="context_length_exceeded")),
            "prompt 0": (400, vllm_error(CONTEXT_TOO_LONG)),
        }
    )
    try:
        llm = openai_client(srv.url, "m", concurrency=2, backoff_s=0.01)
        assert llm.generate_messages(_items(1)) == [None]  # one prompt alone, refused: no sign of the setup
        assert llm.generate_messages(_items(4)) == [None, "echo: prompt 1", None, "echo: prompt 3"]
    finally:
        srv.close()
    assert llm.counters()["llm_http_400"] == 3 and "llm_retries" not in llm.counters()
