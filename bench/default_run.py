"""Wall time of the default first run (`python train.py` from an empty cache) beside the machine's
float32 GEMM rate, so that figures from different machines compare.

  python bench/default_run.py [--keep DIR] [-- extra train.py overrides]

Prints the GEMM rate measured just before and just after the run (another process on the machine
shows as a drop), the run's wall time with its parts (data built, training, evaluation), the wall
time scaled to the slow machine class (90 GFLOP/s: `wall x rate / 90`, which assumes the run is
compute bound, as its training steps are) and the zero-shot AUC the run reached. Goal: <= 300 s
scaled, AUC >= 0.75 (issue 14). With fewer threads than 2 (OMP_NUM_THREADS=1, e.g. when another
process holds the other core), the slow class is taken per core: 45 GFLOP/s a thread.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
SLOW_MACHINE_GFLOPS = 90.0


def gemm_gflops(n: int = 2048, reps: int = 10) -> float:
    """float32 n x n matrix multiply rate on all threads, the best of three timings."""
    a = torch.randn(n, n)
    a @ a
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            a @ a
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 * reps / best / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", default=None, help="cache and output directory to keep (default: a temporary one)")
    ap.add_argument("overrides", nargs="*", help="train.py overrides (after --)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        env = {
            **os.environ,
            "SYNCXR_CACHE": str(root / "cache"),
            "SYNCXR_OUTPUTS": str(root / "outputs"),
            "WANDB_MODE": "disabled",
        }
        run_dir = root / "outputs" / "bench_default_run"
        before = gemm_gflops()
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(REPO / "train.py"), *args.overrides, f"hydra.run.dir={run_dir}"],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t
        after = gemm_gflops()
        if proc.returncode != 0:
            sys.exit(f"train.py failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        timing = json.loads((run_dir / "timing.json").read_text())
        metrics = json.loads((run_dir / "metrics.json").read_text())
    rate = (before + after) / 2
    threads = torch.get_num_threads()
    slow = SLOW_MACHINE_GFLOPS * min(threads, 2) / 2  # the slow class: 2 cores at 90 GFLOP/s
    auc = {k: v for k, v in metrics.items() if k.endswith("/auc") and k.count("/") == 2}
    print(
        f"GEMM float32 2048^2 on {threads} thread(s): {before:.1f} GFLOP/s before, {after:.1f} after (mean {rate:.1f})"
    )
    print(f"default run wall     {wall:7.1f} s  (train.py from an empty cache, {metrics.get('train/steps')} steps)")
    print(f"  data + training    {timing['train_s']:7.1f} s  evaluation {timing['eval_s']:.1f} s")
    print(f"  scaled to {slow:.0f} GFLOP/s   {wall * rate / slow:7.1f} s   (goal <= 300)")
    for k, v in sorted(auc.items()):
        print(f"{k:40s} {v:.3f}   (goal >= 0.75)")


if __name__ == "__main__":
    main()
