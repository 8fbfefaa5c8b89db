"""Generation speed, measured side by side in one run.

  python bench/generation.py [--requests 1280] [--latency 0.05] [--concurrency 32]

(a) OpenAI-compatible client throughput against a local server that answers every request after
    `latency` seconds, with `concurrency` requests in flight, as a fraction of the ideal
    concurrency / latency requests per second (goal >= 0.8).
(b) Time for 200,000 balanced draws (k=3 findings + m=2 anatomy, tau_max capped) over a
    150,000-entity vocabulary (goal <= 2 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import time

import numpy as np
import pandas as pd

from syncxr.entities.sampling import balanced_draws
from syncxr.reports.openai_llm import OpenAICompatibleLLM

BODY = json.dumps({"choices": [{"message": {"content": "No pleural effusion."}}]}).encode()


def serve(port_q, latency: float):
    """A minimal keep-alive HTTP/1.1 server on asyncio: it only waits `latency`, then answers."""
    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length")), 0)
                await reader.readexactly(length)
                await asyncio.sleep(latency)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionResetError):
            writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_q.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()
    asyncio.run(main())


def client_throughput(n: int, latency: float, concurrency: int) -> float:
    q = mp.Queue()
    proc = mp.Process(target=serve, args=(q, latency), daemon=True)
    proc.start()
    port = q.get(timeout=30)
    try:
        llm = OpenAICompatibleLLM(f"http://127.0.0.1:{port}/v1", "bench", base_urls=None, api_key_env=None, concurrency=concurrency,
                                  timeout_s=30, max_retries=4, backoff_s=0.5, max_tokens=256, temperature=0.7)
        items = [([{"role": "user", "content": f"prompt {i}"}], i) for i in range(n)]
        llm.generate_messages(items[:concurrency])  # warm-up: connections open
        t = time.perf_counter()
        out = llm.generate_messages(items)
        dt = time.perf_counter() - t
        assert all(o == "No pleural effusion." for o in out), llm.counters()
        return n / dt
    finally:
        proc.terminate()


def draw_time(n: int = 200_000, vocab_size: int = 150_000) -> float:
    types = np.array(["ABNORMALITY", "NON-ABNORMALITY", "DISEASE", "NON-DISEASE", "ANATOMY"])
    rng = np.random.default_rng(0)
    vocab = pd.DataFrame({"name": [f"entity {i}" for i in range(vocab_size)],
                          "type": types[rng.integers(0, 5, vocab_size)], "count": 1})
    t = time.perf_counter()
    balanced_draws(vocab, n, k=3, m=2, tau_max=15, rng=np.random.default_rng(1))
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1280)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    ideal = args.concurrency / args.latency
    rate = client_throughput(args.requests, args.latency, args.concurrency)
    print(f"(a) client {rate:7.1f} req/s, ideal {ideal:.1f} req/s")
    print(f"RATIO client/ideal throughput: {rate / ideal:.3f}   (goal >= 0.8)")
    secs = min(draw_time() for _ in range(2))
    print(f"(b) 200,000 balanced draws over 150,000 entities: {secs:.2f} s   (goal <= 2 s)")


if __name__ == "__main__":
    main()
