"""A client for OpenAI-compatible chat servers (what vLLM and TGI serve): async, bounded
concurrency, timeouts, and retries with exponential backoff, every failure counted."""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections import Counter

import aiohttp

from .requests import ReportRequest

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAICompatibleLLM:
    name = "openai"

    def __init__(self, base_url: str, model: str, *, api_key_env: str | None, concurrency: int, timeout_s: float,
                 max_retries: int, backoff_s: float, max_tokens: int, temperature: float):
        self.base_url = base_url.rstrip("/")
        # The key is read from this environment variable when requests are sent: never an attribute,
        # never part of a config, a file or a dataset address.
        self.model, self.api_key_env = model, api_key_env
        self.concurrency, self.timeout_s = concurrency, timeout_s
        self.max_retries, self.backoff_s = max_retries, backoff_s
        self.max_tokens, self.temperature = max_tokens, temperature
        self.stats: Counter = Counter()

    def _payload(self, messages: list[dict], seed: int) -> dict:
        return {"model": self.model, "messages": messages, "max_tokens": self.max_tokens,
                "temperature": self.temperature, "seed": seed}

    async def _one(self, session: aiohttp.ClientSession, sem: asyncio.Semaphore, messages, seed) -> str | None:
        async with sem:
            for attempt in range(self.max_retries + 1):
                if attempt:
                    self.stats["retries"] += 1
                    # Full jitter keeps many clients from retrying in lock-step.
                    await asyncio.sleep(random.uniform(0, self.backoff_s * 2 ** (attempt - 1)))
                self.stats["requests"] += 1
                try:
                    async with session.post(self.base_url + "/chat/completions",
                                            json=self._payload(messages, seed)) as r:
                        status = r.status
                        body = await r.read()
                except asyncio.TimeoutError:
                    self.stats["timeouts"] += 1
                    continue
                except aiohttp.ClientError:
                    self.stats["connection_errors"] += 1
                    continue
                if status in RETRY_STATUS:
                    self.stats[f"http_{status}"] += 1
                    continue
                if status != 200:
                    self.stats[f"http_{status}"] += 1
                    return None  # a client error will not go away by retrying
                try:
                    content = json.loads(body)["choices"][0]["message"]["content"]
                    if not isinstance(content, str):
                        raise TypeError("content is not a string")
                except (ValueError, KeyError, IndexError, TypeError):
                    self.stats["malformed"] += 1
                    continue
                return content
            self.stats["gave_up"] += 1
            return None

    async def agenerate_messages(self, items: list[tuple[list[dict], int]]) -> list[str | None]:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        sem = asyncio.Semaphore(self.concurrency)
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(headers=headers, connector=connector, timeout=timeout) as session:
            return await asyncio.gather(*(self._one(session, sem, m, s) for m, s in items))

    def generate_messages(self, items: list[tuple[list[dict], int]]) -> list[str | None]:
        return asyncio.run(self.agenerate_messages(items))

    def generate(self, requests: list[ReportRequest]) -> list[str | None]:
        return self.generate_messages([(r.messages(), r.seed) for r in requests])

    def counters(self) -> dict:
        return {f"llm_{k}": int(v) for k, v in self.stats.items()}
