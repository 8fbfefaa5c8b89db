"""What a synthetic dataset made with the learned phantom backends costs (issue 22's budget: 3,000
samples in <= 20 minutes on the slow class, 2 cores at 90 GFLOP/s), for each study arm that uses one:

  python bench/learned_datasets.py [--cache DIR] [--samples 300] [--threads 2]

Each arm is generate.py's overrides: the two report LMs (llm=phantom_lm_large, _small; the study's
lexicon NER and renderer), the two text-to-image models (imagegen=phantom_diffusion, _weak; the template
LLM), and every learned backend at once (the large LM, the learned NER checking its reports and the
better diffusion model drawing them). The models come from DIR's model cache (built first if missing;
`python -m syncxr.learned.prebuild` builds them all) and their build is not timed: it is paid once per
cache (bench/learned_builds.py). Each arm makes `samples` and then 2 x `samples` samples in fresh
directories, as train.py's first use does (one process, `threads` threads): the difference gives the
seconds per sample, the rest the once-per-dataset part (loading the models, the vocabulary, the
plan), and the two the time of 3,000 samples. That is scaled to the slow class by the float32 GEMM
rate measured before and after on as many threads (an upper bound: these small models multiply far
below the 2048^2 GEMM's rate). `generate.py -m workers=2` splits the per-sample part over 2 processes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import torch
from default_run import SLOW_MACHINE_GFLOPS, gemm_gflops
from report_lms import generation_run

from syncxr.config_targets import CONF_DIR
from syncxr.learned.prebuild import build_preset, learned_presets

ARMS = {
    "report LM, large": ["llm=phantom_lm_large"],
    "report LM, small": ["llm=phantom_lm_small"],
    "diffusion": ["imagegen=phantom_diffusion"],
    "diffusion, weak": ["imagegen=phantom_diffusion_weak"],
    "all learned (large LM, learned NER, diffusion)": [
        "llm=phantom_lm_large",
        "ner=phantom_ner",
        "imagegen=phantom_diffusion",
    ],
}
BUDGET_S = 20 * 60


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default=".cache/syncxr", help="cache holding (or given) the learned models")
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2, help="the slow class has 2 cores")
    args = ap.parse_args()
    cache = Path(args.cache).resolve()
    os.environ["SYNCXR_CACHE"] = str(cache)
    torch.set_num_threads(args.threads)
    before = gemm_gflops()
    runs = {}
    for name, overrides in ARMS.items():
        for group, preset in learned_presets():  # a learned model missing from the cache is built here, untimed
            if f"{group}={preset}" in overrides:
                build_preset(group, [*overrides, f"paths.cache_dir={cache}"], str(CONF_DIR))
        runs[name] = [generation_run(overrides, cache, n) for n in (args.samples, 2 * args.samples)]
        shutil.rmtree(cache / "bench_generated", ignore_errors=True)
    after = gemm_gflops()
    rate = (before + after) / 2
    slow = SLOW_MACHINE_GFLOPS * min(args.threads, 2) / 2
    print(f"GEMM float32 2048^2 on {args.threads} thread(s): {before:.1f} GFLOP/s before, {after:.1f} after")
    for name, (small, large) in runs.items():
        per_sample = (large["seconds"] - small["seconds"]) / args.samples
        if per_sample <= 0:  # timing noise larger than the added samples' cost: use the whole run, an upper bound
            print(f"{name}: too few samples to tell the per-sample cost from the once part (raise --samples)")
            per_sample = large["seconds"] / (2 * args.samples)
        fixed = max(small["seconds"] - per_sample * args.samples, 0.0)
        full = fixed + 3000 * per_sample
        counters = large["dataset_json"].get("counters", {})
        print(
            f"{name}: {args.samples} / {2 * args.samples} samples in {small['seconds']:.0f} / {large['seconds']:.0f} s "
            f"({per_sample:.3f} s per sample, {fixed:.0f} s once; {counters.get('samples_written', '?')} of "
            f"{2 * args.samples} kept); 3,000: ~{full:.0f} s here, ~{full * rate / slow / 60:.1f} min on the "
            f"slow class at {slow:.0f} GFLOP/s (budget {BUDGET_S // 60})"
        )
        print(f"  dataset.json of the larger: {json.dumps(large['dataset_json'])[:400]}")


if __name__ == "__main__":
    main()
