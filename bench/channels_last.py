"""The default ConVIRT step (phantom sizes, batch 32, one thread) with the image tower in channels-last
memory format against the default contiguous format, side by side in one run, with the GEMM rate.
Not adopted: the format changes the convolutions' float path, so every default figure would move.

    .venv/bin/python bench/channels_last.py [--steps 15]
"""

from __future__ import annotations

import argparse
import time

import torch
from bench_common import default_config
from default_run import gemm_gflops

from syncxr.models.build import build_model


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = default_config([])
    model = build_model(cfg.model, cfg.image_encoder, cfg.text_encoder)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    size = cfg.loader.image_size
    images = torch.randn(args.batch, 3, size, size)
    ids = torch.randint(5, 100, (args.batch, 24))
    mask = torch.ones_like(ids)

    def ms_per_step(x: torch.Tensor) -> float:
        def step():
            model(x, ids, mask)["loss"].backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        for _ in range(3):  # warm-up: kernels are chosen on first use
            step()
        t = time.perf_counter()
        for _ in range(args.steps):
            step()
        return (time.perf_counter() - t) / args.steps * 1000

    print(f"GEMM float32 2048^2 (1 thread): {gemm_gflops():.0f} GFLOP/s")
    a = ms_per_step(images)
    model.to(memory_format=torch.channels_last)
    b = ms_per_step(images.contiguous(memory_format=torch.channels_last))
    model.to(memory_format=torch.contiguous_format)
    c = ms_per_step(images)
    print(f"contiguous {a:.1f} ms, channels-last {b:.1f} ms, contiguous again {c:.1f} ms")
    print(f"RATIO channels-last / contiguous: {b / ((a + c) / 2):.3f}")


if __name__ == "__main__":
    main()
