"""CPU-seconds of a refused config (`train.py trainer.max_steps=-5`) beside those of importing the
training job, which is what a refusal cost while the checks took their choices from torch-importing
modules. Side by side in one run, with the machine's float32 GEMM rate.

    .venv/bin/python bench/config_refusal.py [--reps 3]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
from pathlib import Path

from default_run import gemm_gflops

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {
    "refused train.py": [sys.executable, "train.py", "trainer.max_steps=-5"],
    "import of the training job": [sys.executable, "-c", "import syncxr.train.training_job"],
}


def child_cpu(cmd: list[str], expect: int) -> float:
    """User + system CPU-seconds of one run of `cmd` (a child process), checked for its exit status."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != expect:
        raise SystemExit(f"{cmd}: exit {proc.returncode}, expected {expect}\n{proc.stderr[-2000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    print(f"GEMM float32 2048^2: {gemm_gflops():.0f} GFLOP/s")
    best = {}
    for _ in range(args.reps):  # interleaved, so that a load change hits both alike
        for name, cmd in COMMANDS.items():
            cpu = child_cpu(cmd, expect=2 if name.startswith("refused") else 0)
            best[name] = min(cpu, best.get(name, float("inf")))
    for name, cpu in best.items():
        print(f"{name}: {cpu:.2f} CPU-s (best of {args.reps})")
    refused, imported = best.values()
    print(f"ratio import / refusal: {imported / refused:.1f}x")


if __name__ == "__main__":
    main()
