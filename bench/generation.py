"""Generation speed, measured side by side in one run.

  python bench/generation.py [--requests 1280] [--latency 0.05] [--concurrency 32] [--samples 600] [--workers 3]

(a) OpenAI-compatible client throughput against a local server that answers every request after
    `latency` seconds, with `concurrency` requests in flight, as a fraction of the ideal
    concurrency / latency requests per second (goal >= 0.8); and against two such servers
    (`llm.base_urls`), as a multiple of one server's (goal >= 1.8: the requests are spread; on a
    busy machine use a latency at which one client is not CPU-bound, e.g. --latency 0.2).
(b) Time for 200,000 balanced draws (k=3 findings + m=2 anatomy, tau_max capped) over a
    150,000-entity vocabulary (goal <= 2 s).
(c) Phantom generation of `samples` samples split over `workers` processes vs one process (the
    shards, images and manifest; vocabulary and plan made beforehand), with the speed-up and
    whether the two datasets are identical. On a machine with fewer cores than workers the
    speed-up is bounded by the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import filecmp
import json
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from bench_common import default_config

from syncxr.dataset_dirs import generate_dataset
from syncxr.entities.sampling import balanced_draws
from syncxr.generation.generation_job import generation_config
from syncxr.reports.openai_llm import OpenAICompatibleLLM

BODY = json.dumps({"choices": [{"message": {"content": "No pleural effusion."}}]}).encode()


def serve(port_q, latency: float):
    """A minimal keep-alive HTTP/1.1 server on asyncio: it only waits `latency`, then answers."""

    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                await reader.readexactly(length)
                await asyncio.sleep(latency)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                    + str(len(BODY)).encode()
                    + b"\r\n\r\n"
                    + BODY
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionResetError):
            writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_q.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


def client_throughput(n: int, latency: float, concurrency: int, servers: int = 1) -> float:
    q = mp.Queue()
    procs = [mp.Process(target=serve, args=(q, latency), daemon=True) for _ in range(servers)]
    for proc in procs:
        proc.start()
    urls = [f"http://127.0.0.1:{q.get(timeout=30)}/v1" for _ in procs]
    try:
        llm = OpenAICompatibleLLM(
            urls[0],
            "bench",
            base_urls=urls,
            api_key_env=None,
            concurrency=concurrency,
            timeout_s=30,
            max_retries=4,
            backoff_s=0.5,
            max_tokens=256,
            temperature=0.7,
        )
        items = [([{"role": "user", "content": f"prompt {i}"}], i) for i in range(n)]
        llm.generate_messages(items[:concurrency])  # warm-up: connections open
        t = time.perf_counter()
        out = llm.generate_messages(items)
        dt = time.perf_counter() - t
        assert all(o == "No pleural effusion." for o in out), llm.counters()
        return n / dt
    finally:
        for proc in procs:
            proc.terminate()


def draw_time(n: int = 200_000, vocab_size: int = 150_000) -> float:
    types = np.array(["ABNORMALITY", "NON-ABNORMALITY", "DISEASE", "NON-DISEASE", "ANATOMY"])
    rng = np.random.default_rng(0)
    vocab = pd.DataFrame(
        {"name": [f"entity {i}" for i in range(vocab_size)], "type": types[rng.integers(0, 5, vocab_size)], "count": 1}
    )
    t = time.perf_counter()
    balanced_draws(vocab, n, k=3, m=2, tau_max=15, rng=np.random.default_rng(1))
    return time.perf_counter() - t


def _worker(gen, out: Path, cache: Path, worker: int, workers: int) -> None:
    generate_dataset(gen, out, cache, progress=False, worker=worker, workers=workers)


def worker_scaling(n: int, workers: int) -> tuple[float, float, bool]:
    """Wall seconds of the shard stage with one process and with `workers` forked processes."""
    gen = generation_config(
        default_config([f"generation.n_samples={n}", "generation.shard_size=50"], name="generate").generation
    )
    root = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    try:
        cache = root / "cache"
        generate_dataset(gen, root / "k1", cache, progress=False, until="plan")
        shutil.copytree(root / "k1", root / "kk")
        times = []
        for out, k in ((root / "k1", 1), (root / "kk", workers)):
            ctx = mp.get_context("fork")
            procs = [ctx.Process(target=_worker, args=(gen, out, cache, w, k)) for w in range(k)]
            t = time.perf_counter()
            for p in procs:
                p.start()
            for p in procs:
                p.join()
            times.append(time.perf_counter() - t)
            assert all(p.exitcode == 0 for p in procs)
        same = filecmp.cmp(root / "k1" / "manifest.parquet", root / "kk" / "manifest.parquet", shallow=False)
        same &= all(
            filecmp.cmp(p, root / "kk" / "images" / p.name, shallow=False) for p in (root / "k1" / "images").iterdir()
        )
        return times[0], times[1], same
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1280)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--samples", type=int, default=600)
    ap.add_argument("--workers", type=int, default=3)
    args = ap.parse_args()
    ideal = args.concurrency / args.latency
    rate = client_throughput(args.requests, args.latency, args.concurrency)
    print(f"(a) client {rate:7.1f} req/s, ideal {ideal:.1f} req/s")
    print(f"RATIO client/ideal throughput: {rate / ideal:.3f}   (goal >= 0.8)")
    two = client_throughput(2 * args.requests, args.latency, args.concurrency, servers=2)
    print(f"    two servers: {two:7.1f} req/s")
    print(f"RATIO two servers/one server: {two / rate:.2f}   (goal >= 1.8)")
    secs = min(draw_time() for _ in range(2))
    print(f"(b) 200,000 balanced draws over 150,000 entities: {secs:.2f} s   (goal <= 2 s)")
    t1, tk, same = worker_scaling(args.samples, args.workers)
    print(
        f"(c) {args.samples} phantom samples: 1 worker {t1:.1f} s, {args.workers} workers {tk:.1f} s "
        f"on {os.cpu_count()} cores; identical datasets: {same}"
    )
    print(
        f"RATIO speed-up {args.workers} workers/1: {t1 / tk:.2f}   (bound: min(workers, cores) = "
        f"{min(args.workers, os.cpu_count())})"
    )


if __name__ == "__main__":
    main()
