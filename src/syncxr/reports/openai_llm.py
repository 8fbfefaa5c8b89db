"""A client for OpenAI-compatible chat servers (what vLLM and TGI serve): async, bounded
concurrency per server, timeouts, retries with exponential backoff, every failure counted.

Several servers of the same model (e.g. one vLLM per node) can share the load: request i goes to
server i mod n, and each retry to the next server, so a dead server's requests are answered by the
others; a server that failed is skipped for a backoff period before it is tried again.

Each answer is one of three things:
  the text        HTTP 200 with a non-empty message content;
  None            the server refused this request for its content (400, 413, 422: e.g. a prompt too
                  long for the context), which retrying will not change: a verdict on the sample;
  BackendFailure  the servers failed (connection errors, timeouts, 5xx, garbage, or HTTP 200 with an
                  empty content, on every attempt; or a status saying the client is set up wrongly:
                  401, 403, a 404 route). Pipelines keep such samples for a re-run.
A refusal that is the client's setup, not the request's, raises `BackendMisconfigured` with the
server's message (the pipeline stops before committing anything of the batch). It is told from a
verdict by (server_errors.py reads the error body):
  - the body says the model does not exist (vLLM: 404 "The model `x` does not exist."; OpenAI:
    code "model_not_found"), whatever else was answered;
  - every request of a batch of at least two different prompts was refused (400/413/422, a
    context-length message included: max_tokens above the context, bad parameters, a wrong model
    whose message is not recognised), and no request of this client has been answered yet. Once
    one was, refusals are verdicts: the setup works, so they are about their prompts.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from dataclasses import dataclass

import aiohttp

from .backend_failure import BackendFailure, BackendMisconfigured
from .requests import ReportRequest
from .server_errors import Refusal, read_refusal

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
CONTENT_STATUS = {400, 413, 422}  # the request was refused for what it asks: a verdict on the sample
MAX_COOLDOWN_S = 60.0  # longest a failed server is skipped before it is tried again
# One refused prompt may just be too long; different prompts all refused point at the setup.
MIN_PROMPTS_TO_JUDGE_SETUP = 2


class _Servers:
    """The servers' health, kept across calls: a server that failed is skipped for a while."""

    def __init__(self, urls: list[str], backoff_s: float):
        self.urls, self.backoff_s = urls, backoff_s
        self.down_until = [0.0] * len(urls)
        self.failures = [0] * len(urls)

    def pick(self, i: int, attempt: int) -> int:
        """Server for request `i` on try `attempt`: round robin, the next one on each retry, skipping
        servers in their cooldown (unless all are)."""
        order = [(i + attempt + j) % len(self.urls) for j in range(len(self.urls))]
        now = time.monotonic()
        up = [s for s in order if self.down_until[s] <= now]
        return up[0] if up else min(order, key=lambda s: self.down_until[s])

    def failed(self, s: int) -> None:
        self.failures[s] += 1
        cooldown = min(MAX_COOLDOWN_S, self.backoff_s * 2 ** self.failures[s])
        self.down_until[s] = time.monotonic() + cooldown

    def answered(self, s: int) -> None:
        self.failures[s], self.down_until[s] = 0, 0.0


@dataclass(frozen=True)
class OpenAIClientSettings:
    """The keys of conf/llm/base/openai_server.yaml: where the servers are, how requests travel, and
    the sampling settings."""

    base_url: str
    model: str
    base_urls: list[str] | None  # several servers of the same model, sharing the requests; None: base_url
    api_key_env: str | None  # the variable holding the key, read when requests are sent
    concurrency: int  # requests in flight per server
    timeout_s: float
    max_retries: int
    backoff_s: float
    max_tokens: int
    temperature: float


class OpenAICompatibleLLM:
    name = "openai"
    quality: dict = {}  # measured figures (syncxr.backends); a learned preset's factory sets its own
    settings_type = OpenAIClientSettings  # what the config's keys build (tests/test_configs.py)

    def __init__(self, base_url: str, model: str, **settings):
        """`settings`: the other fields of OpenAIClientSettings, as the config gives them."""
        s = OpenAIClientSettings(base_url, model, **settings)
        urls = list(s.base_urls) if s.base_urls else [s.base_url]
        if not urls or not all(isinstance(u, str) and u for u in urls):
            raise ValueError(f"base_urls must list server URLs, got {s.base_urls!r}")
        if s.concurrency < 1 or s.max_retries < 0:
            raise ValueError(f"concurrency must be >= 1 and max_retries >= 0, got {s.concurrency}, {s.max_retries}")
        self.servers = _Servers([u.rstrip("/") for u in urls], s.backoff_s)
        # The key is read from this environment variable when requests are sent: never an attribute,
        # never part of a config, a file or a dataset address.
        self.model, self.api_key_env = s.model, s.api_key_env
        self.concurrency, self.timeout_s = s.concurrency, s.timeout_s
        self.max_retries, self.backoff_s = s.max_retries, s.backoff_s
        self.max_tokens, self.temperature = s.max_tokens, s.temperature
        self.stats: Counter = Counter()
        self.answered_once = False  # whether any request got a text: the setup works (kept across calls)

    def _payload(self, messages: list[dict], seed: int) -> dict:
        return {
            "model": self.model,
            "messages": messages,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "seed": seed,
        }

    async def _post(self, session: aiohttp.ClientSession, sems, s: int, messages, seed) -> tuple[str, object]:
        """One try at server `s`: ("ok", text) | ("refused", Refusal) | ("retry", reason) | ("fail", reason)."""
        self.stats["requests"] += 1
        if len(self.servers.urls) > 1:
            self.stats[f"requests_server{s}"] += 1
        async with sems[s]:
            try:
                async with session.post(
                    self.servers.urls[s] + "/chat/completions", json=self._payload(messages, seed)
                ) as r:
                    status = r.status
                    body = await r.read()
            except asyncio.TimeoutError:
                return "retry", "timeouts"
            except aiohttp.ClientError:
                return "retry", "connection_errors"
        if status in RETRY_STATUS:
            return "retry", f"http_{status}"
        if status in CONTENT_STATUS or status == 404:
            refusal = read_refusal(status, body)
            if status in CONTENT_STATUS or refusal.kind == "model":  # a 404 of another kind: a wrong URL
                self.stats[f"http_{status}"] += 1
                return "refused", refusal
        if status != 200:
            return "fail", f"http_{status}"  # wrong key, URL or route: retrying now will not help
        try:
            content = json.loads(body)["choices"][0]["message"]["content"]
            if not isinstance(content, str):
                raise TypeError("content is not a string")
        except (ValueError, KeyError, IndexError, TypeError):
            return "retry", "malformed"
        if not content.strip():
            # The server failed to produce a text (an aborted or broken generation), it did not judge
            # the prompt: retried, and kept for a re-run if it never answers, never a dropped sample.
            return "retry", "empty_answer"
        return "ok", content

    async def _one(
        self, session: aiohttp.ClientSession, sems, i: int, messages, seed
    ) -> str | Refusal | BackendFailure:
        reason = "no_attempt"
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.stats["retries"] += 1
                # Full jitter keeps many clients from retrying in lock-step (slept outside the
                # server's slot, so the others keep it busy meanwhile).
                await asyncio.sleep(random.uniform(0, self.backoff_s * 2 ** (attempt - 1)))
            s = self.servers.pick(i, attempt)
            kind, value = await self._post(session, sems, s, messages, seed)
            if kind in ("ok", "refused"):
                self.servers.answered(s)
                return value
            reason = value
            self.stats[reason] += 1
            self.servers.failed(s)
            if kind == "fail":
                break
        self.stats["gave_up"] += 1
        return BackendFailure(reason)

    async def agenerate_messages(self, items: list[tuple[list[dict], int]]) -> list[str | None | BackendFailure]:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        sems = [asyncio.Semaphore(self.concurrency) for _ in self.servers.urls]  # requests in flight per server
        connector = aiohttp.TCPConnector(limit=self.concurrency * len(self.servers.urls))
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(headers=headers, connector=connector, timeout=timeout) as session:
            answers = await asyncio.gather(*(self._one(session, sems, i, m, s) for i, (m, s) in enumerate(items)))
        self._stop_if_misconfigured(items, answers)
        self.answered_once = self.answered_once or any(isinstance(a, str) for a in answers)
        return [None if isinstance(a, Refusal) else a for a in answers]

    def _stop_if_misconfigured(self, items, answers) -> None:
        """Raises BackendMisconfigured where the refusals are the setup's, not the prompts' (module doc)."""
        refused = [a for a in answers if isinstance(a, Refusal)]
        wrong_model = next((a for a in refused if a.kind == "model"), None)
        if wrong_model is not None:
            self._misconfigured(wrong_model, "the model is not served there")
        if refused and len(refused) == len(answers) and not self.answered_once:
            prompts = len({json.dumps(m, sort_keys=True) for m, _ in items})
            if prompts >= MIN_PROMPTS_TO_JUDGE_SETUP:
                self._misconfigured(
                    refused[0], f"all {len(answers)} requests of {prompts} different prompts, none answered yet"
                )

    def _misconfigured(self, refusal: Refusal, why: str):
        setup = f"model={self.model!r}, max_tokens={self.max_tokens}, temperature={self.temperature}"
        raise BackendMisconfigured(", ".join(self.servers.urls), refusal.status, refusal.message, setup, why)

    def generate_messages(self, items: list[tuple[list[dict], int]]) -> list[str | None | BackendFailure]:
        return asyncio.run(self.agenerate_messages(items))

    def generate(self, requests: list[ReportRequest]) -> list[str | None | BackendFailure]:
        return self.generate_messages([(r.messages(), r.seed) for r in requests])

    def counters(self) -> dict:
        return {f"llm_{k}": int(v) for k, v in self.stats.items()}
