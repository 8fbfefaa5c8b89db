"""Build time and held-out quality of the learned phantom NER (`ner=phantom_ner`) from an empty model
cache, beside the machine's float32 GEMM rate.

  OMP_NUM_THREADS=1 python bench/learned_ner.py [--keep DIR] [-- extra overrides]

Prints the GEMM rate before and after the build, the build's wall time and that time scaled to the
slow machine class (`wall x rate / slow`, bench/default_run.py), and the build record's quality:
span F1 on the real corpus's val reports and the share of sections whose extraction equals the
writer's and the lexicon NER's. Budget (issue 22): <= ~5 min on the slow class.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "src"), str(Path(__file__).resolve().parents[1])]

from bench.bench_common import default_config  # noqa: E402
from bench.default_run import SLOW_MACHINE_GFLOPS, gemm_gflops  # noqa: E402
from syncxr.config import build  # noqa: E402
from syncxr.learned.model_cache import built_record  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", default=None, help="cache directory to keep (default: a temporary one)")
    ap.add_argument("overrides", nargs="*", help="config overrides (after --), e.g. ner.spec.epochs=6")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SYNCXR_CACHE"] = str(Path(args.keep or tmp).resolve())
        cfg = default_config(["ner=phantom_ner", *args.overrides], name="generate")
        before = gemm_gflops()
        t = time.perf_counter()
        ner = build(cfg.generation.ner, "ner")
        wall = time.perf_counter() - t
        after = gemm_gflops()
        record = built_record(Path(ner.pipe.model.name_or_path))
    rate, threads = (before + after) / 2, torch.get_num_threads()
    slow = SLOW_MACHINE_GFLOPS * min(threads, 2) / 2
    print(
        f"GEMM float32 2048^2 on {threads} thread(s): {before:.1f} GFLOP/s before, {after:.1f} after (mean {rate:.1f})"
    )
    print(
        f"NER build wall {wall:.1f} s (training {record['seconds']:.1f} s), scaled to {slow:.0f} GFLOP/s: "
        f"{wall * rate / slow:.1f} s (budget ~300)"
    )
    print(
        json.dumps({"quality": record["quality"], "losses": record["losses"], "n_train": record["n_train"]}, indent=1)
    )


if __name__ == "__main__":
    main()
