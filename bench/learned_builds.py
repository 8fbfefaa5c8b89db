"""What building every learned phantom backend costs (issue 22's budget: <= 60 minutes together on
the slow class, 2 cores at 90 GFLOP/s), as `python -m syncxr.learned.prebuild` builds them: the report
LMs, the NER and the text-to-image models side by side, one per core, from an empty model cache.

  python bench/learned_builds.py [--jobs 2] [--cache DIR] [KEY=VALUE ...]

The phantom corpora and benchmark twins of DIR (default: the project cache, .cache/syncxr) are reused;
the models are built into a fresh directory. Prints the float32 GEMM rate on the cores used before and
after, each build's seconds, the wall time, and the wall time scaled to the slow class by the GEMM rate
(an upper bound: these small models multiply far below the 2048^2 GEMM's rate).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from default_run import SLOW_MACHINE_GFLOPS, gemm_gflops

from syncxr.learned.prebuild import prebuild


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2, help="builds side by side (the slow class has 2 cores)")
    ap.add_argument("--cache", default=".cache/syncxr", help="cache whose corpora are reused")
    ap.add_argument("overrides", nargs="*", help="train.py overrides")
    args = ap.parse_args()
    torch.set_num_threads(args.jobs)
    before = gemm_gflops()
    with tempfile.TemporaryDirectory() as tmp:
        for part in ("datasets", "benchmarks"):  # the corpora stay; only the models are new
            if (Path(args.cache) / part).is_dir():
                os.symlink(Path(args.cache).resolve() / part, Path(tmp) / part)
        start = time.perf_counter()
        seconds = prebuild([*args.overrides, f"paths.cache_dir={tmp}"], args.jobs)
        wall = time.perf_counter() - start
    after = gemm_gflops()
    rate = (before + after) / 2
    slow = SLOW_MACHINE_GFLOPS * min(args.jobs, 2) / 2
    print(f"GEMM float32 2048^2 on {args.jobs} thread(s): {before:.1f} GFLOP/s before, {after:.1f} after")
    for name, s in seconds.items():
        print(f"  {name}: {s:.0f} s")
    print(
        f"all {len(seconds)} built in {wall:.0f} s with {args.jobs} jobs; at the slow class's {slow:.0f} GFLOP/s "
        f"on as many cores: {wall * rate / slow / 60:.1f} min (budget 60)"
    )


if __name__ == "__main__":
    main()
