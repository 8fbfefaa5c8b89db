"""GLoRIA's vectorised local loss against the published per-caption loop, measured side by side.

  python bench/gloria_loss.py [--batch 48] [--dim 768] [--grid 19] [--repeats 3]

Forward + backward (gradients for region and word features) in float32 on the CPU, the paper's
batch of 48 images with 19 x 19 regions of 768 channels, for captions of 5-30 words (goal >= 20x)
and of 10-97 words (goal >= 10x). The two implementations alternate within each repeat (which goes
first alternates too); the ratio is of the median times. Both must agree on the loss.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from syncxr.models.gloria_loss import _use_gram, local_loss
from syncxr.models.gloria_loss_reference import local_loss_reference

CASES = {"5-30 words": (5, 30, 20.0), "10-97 words": (10, 97, 10.0)}


def timed(fn, regions, words, lengths) -> tuple[float, float]:
    t = time.perf_counter()
    l_i2t, l_t2i, _ = fn(regions, words, lengths)
    torch.autograd.grad(l_i2t + l_t2i, (regions, words))
    return time.perf_counter() - t, float((l_i2t + l_t2i).detach())


def gflop(n_words: int, b: int, s: int, d: int) -> tuple[float, float]:
    """Matrix-product flops (forward + backward) of the loop and of ours."""
    loop = 12 * n_words * b * s * d  # word-region scores and contexts, each with two gradients
    ours = 6 * n_words * b * s * d  # the scores of all words against all regions, and gradients
    ours += 4 * b * s * s * (d + n_words) if _use_gram(n_words, s, d) else 6 * n_words * b * s * d
    return loop / 1e9, ours / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--grid", type=int, default=19)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    args = ap.parse_args()
    b, d, g = args.batch, args.dim, args.grid
    threads, load = torch.get_num_threads(), os.getloadavg()[0]
    print(f"torch {torch.__version__}, {threads} threads, load average {load:.1f} at the start")
    for name in args.cases:
        lo, hi, goal = CASES[name]
        gen = torch.Generator().manual_seed(0)
        lengths = torch.randint(lo, hi + 1, (b,), generator=gen)
        regions = torch.randn(b, d, g, g, generator=gen).requires_grad_()
        words = torch.randn(b, d, int(lengths.max()), generator=gen).requires_grad_()
        impls = {"loop": local_loss_reference, "ours": local_loss}
        times = {k: [] for k in impls}
        losses = {k: timed(f, regions, words, lengths)[1] for k, f in impls.items()}  # warm-up
        if abs(losses["ours"] - losses["loop"]) > 1e-4 * abs(losses["loop"]):
            raise AssertionError(f"{name}: the implementations disagree: {losses}")
        for r in range(args.repeats):
            for k in list(impls) if r % 2 == 0 else list(impls)[::-1]:
                times[k].append(timed(impls[k], regions, words, lengths)[0])
        loop_s, ours_s = statistics.median(times["loop"]), statistics.median(times["ours"])
        loop_gf, ours_gf = gflop(int(lengths.sum()), b, g * g, d)
        ratio = loop_s / ours_s
        print(
            f"{name}: {int(lengths.sum())} words; loop {loop_s:.2f} s ({loop_gf / loop_s:.0f} GFLOP/s on "
            f"{loop_gf:.0f} GFLOP), ours {ours_s:.3f} s ({ours_gf / ours_s:.0f} GFLOP/s on {ours_gf:.0f} "
            f"GFLOP); loop / ours = {ratio:.1f}x (goal >= {goal:.0f}x)"
        )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
