"""Runs a command on an emulated slow machine class: a CPU quota (a Linux cgroup, v1 `cpu` or v2)
calibrated so that a float32 2048^2 GEMM on 2 threads inside it runs at the slow class's 90 GFLOP/s,
then prints the command's wall time beside the rate measured inside before and after it:

  sudo python bench/slow_class.py [--gflops 90] [--threads 2] -- python -m pytest

Everything in the command (its subprocesses, SLURM daemons and jobs it starts) runs under the quota.
It slows all code alike, where a real slow machine may lose less on code that does not multiply, so
its wall time is an upper bound; other load on the machine lowers the rate inside, which the rates
printed show. Needs root and a writable cgroup hierarchy (/sys/fs/cgroup).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

PERIOD_US = 100_000
GEMM = (
    "import sys, torch; sys.path.insert(0, {bench!r}); torch.set_num_threads({threads}); "
    "from default_run import gemm_gflops; print(gemm_gflops())"
)


def cgroup(name: str) -> tuple[Path, Callable[[int], None]]:
    """(the cgroup's directory, fn(quota_us) setting its CPU quota per PERIOD_US), created if absent."""
    v1 = Path("/sys/fs/cgroup/cpu")
    if v1.is_dir():
        d = v1 / name
        d.mkdir(exist_ok=True)
        (d / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (d / "cpu.shares").write_text("102400")  # its quota, not a fair share, is what binds it
        return d, lambda q: (d / "cpu.cfs_quota_us").write_text(str(q))
    d = Path("/sys/fs/cgroup") / name
    d.mkdir(exist_ok=True)
    return d, lambda q: (d / "cpu.max").write_text(f"{q} {PERIOD_US}")


def inside(d: Path, cmd: list[str], env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    """`cmd` run in cgroup `d` (a shell joins it, then execs the command)."""
    join = f'echo $$ > {d / "cgroup.procs"} && exec "$@"'
    return subprocess.run(["sh", "-c", join, "sh", *cmd], env=env, **kw)


def rate(d: Path, threads: int) -> float:
    code = GEMM.format(bench=str(Path(__file__).parent), threads=threads)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    out = inside(d, [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def calibrate(d: Path, set_quota, target: float, threads: int) -> tuple[int, float]:
    """The quota (us per period) giving `target` GFLOP/s inside, by bisection; (quota, rate)."""
    lo, hi = 5_000, threads * PERIOD_US
    set_quota(hi)
    full = rate(d, threads)
    if full <= target:
        return hi, full
    q = int(hi * target / full)
    for _ in range(4):
        set_quota(q)
        r = rate(d, threads)
        lo, hi = (q, hi) if r < target else (lo, q)
        q = int((lo + hi) / 2)
    set_quota(q)
    return q, rate(d, threads)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gflops", type=float, default=90.0, help="the slow class's rate on `threads` threads")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--name", default="syncxr-slow-class", help="the cgroup's name")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        ap.error("no command given (after --)")
    d, set_quota = cgroup(args.name)
    quota, before = calibrate(d, set_quota, args.gflops, args.threads)
    print(f"quota {quota / PERIOD_US:.2f} CPUs: GEMM float32 2048^2 on {args.threads} threads {before:.1f} GFLOP/s")
    start = time.perf_counter()
    rc = inside(d, cmd).returncode
    wall = time.perf_counter() - start
    after = rate(d, args.threads)
    print(
        f"{' '.join(cmd)}: exit {rc}, {wall:.0f} s ({wall / 60:.1f} min) at {before:.1f} GFLOP/s before, "
        f"{after:.1f} after; at exactly {args.gflops:.0f}: {wall * (before + after) / 2 / args.gflops / 60:.1f} min"
    )
    sys.exit(rc)


if __name__ == "__main__":
    main()
