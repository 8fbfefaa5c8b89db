"""The learned report LMs (llm=phantom_lm_small, phantom_lm_large): build time, quality, generation.

  OMP_NUM_THREADS=1 python bench/report_lms.py [--cache DIR] [--requests 100] [--samples 300]

For each preset, from an empty model cache (DIR/models; the phantom real corpus is reused): the
build's seconds and its recorded losses (held-out: the val split's answer tokens), the first-attempt
exact-entity rate (the lexicon NER finds exactly the entities asked) on `requests` held-out FINDINGS
requests and on `requests` generation-shaped ones (k=2 findings and m=2 structures drawn as the
entity plan draws them from the train split's vocabulary, and the IMPRESSION of each accepted
FINDINGS), and a generation of `samples` SynCXR samples with the preset (the phantom NER check and
images): its seconds, scaled to 3,000 samples, and its report counters. Times are scaled
to the slow machine class (2 cores at 90 GFLOP/s, taken per thread: 45 GFLOP/s) by the float32
GEMM rate measured here with as many threads (bench/default_run.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
from bench_common import default_config
from default_run import SLOW_MACHINE_GFLOPS, gemm_gflops

from syncxr.config import build, plain
from syncxr.dataset_dirs import generate_dataset
from syncxr.entities.lexicon_ner import phantom_lexicon_ner
from syncxr.entities.long_tail import report_texts
from syncxr.entities.sampling import balanced_draws
from syncxr.entities.vocabulary import build_vocabulary
from syncxr.generation.generation_job import generation_config
from syncxr.learned.model_cache import built_record
from syncxr.learned.real_corpus import corpus_spec
from syncxr.learned.report_lm import ensure_report_lm
from syncxr.learned.report_pairs import findings_requests
from syncxr.phantom.corpus import corpus_reports
from syncxr.reports.loop import entity_key
from syncxr.reports.requests import ReportRequest

PRESETS = ("phantom_lm_small", "phantom_lm_large")


def first_attempt_rate(llm, section: dict, cache: Path, n: int) -> tuple[float, float]:
    """(share of `n` held-out FINDINGS requests answered with exactly their entities, seconds)."""
    ner = phantom_lexicon_ner()
    rows = corpus_reports(corpus_spec(section["corpus"]), cache, "val")[:n]
    reqs = findings_requests(rows, ner, seed=1)
    start = time.perf_counter()
    texts = llm.generate(reqs)
    seconds = time.perf_counter() - start
    ok = sum(entity_key(ner.extract(t or "")) == entity_key(r.entities) for t, r in zip(texts, reqs))
    return ok / len(reqs), seconds


def plan_rates(llm, section: dict, cache: Path, n: int) -> tuple[float, float]:
    """First-attempt exact rates of `n` FINDINGS requests drawn as generation's entity plan draws
    them (balanced, k=2 findings, m=2 structures, from the train split's vocabulary) and of the
    IMPRESSION requests of the FINDINGS accepted."""
    ner = phantom_lexicon_ner()
    vocab = build_vocabulary(
        report_texts(corpus_reports(corpus_spec(section["corpus"]), cache, "train")), ner, progress=False
    )
    draws = balanced_draws(vocab, n, 2, 2, n, np.random.default_rng(1))
    reqs = [
        ReportRequest(f"s{i}", "findings", vocab.iloc[d][["name", "type"]].to_dict("records"), i)
        for i, d in enumerate(draws)
    ]
    texts = llm.generate(reqs)
    ok = [entity_key(ner.extract(t or "")) == entity_key(r.entities) for t, r in zip(texts, reqs)]
    imp = [
        ReportRequest(r.sample_id, "impression", r.entities, r.seed, findings=t)
        for t, r, g in zip(texts, reqs, ok)
        if g
    ]
    imp_ok = [entity_key(ner.extract(t or "")) == entity_key(r.entities) for t, r in zip(llm.generate(imp), imp)]
    return float(np.mean(ok)), float(np.mean(imp_ok)) if imp_ok else float("nan")


def generation_run(overrides: list[str], cache: Path, n: int) -> dict:
    """Seconds to make an `n`-sample dataset with generate.py's `overrides` in a fresh directory under
    `cache`, and its dataset.json's counts, attempts and counters."""
    cfg = default_config([*overrides, f"generation.n_samples={n}", "generation.shard_size=100"], "generate")
    gen = generation_config(cfg.generation)
    out = cache / "bench_generated" / "_".join(o.replace("=", "-") for o in overrides)
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    try:
        generate_dataset(gen, out, cache, progress=False)
    except ValueError as e:  # every sample dropped: the run says so, with its counters
        return {"seconds": round(time.perf_counter() - start, 1), "dataset_json": {"error": str(e)}}
    seconds = time.perf_counter() - start
    info = json.loads((out / "dataset.json").read_text())
    return {"seconds": round(seconds, 1), "dataset_json": {k: info[k] for k in ("counts", "attempts", "counters")}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default=".cache/bench_report_lms")
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--samples", type=int, default=300)
    args = ap.parse_args()
    cache = Path(args.cache).resolve()
    shutil.rmtree(cache / "models", ignore_errors=True)
    os.environ["SYNCXR_CACHE"] = str(cache)
    threads = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))
    rate = gemm_gflops()
    slow = SLOW_MACHINE_GFLOPS * min(threads, 2) / 2
    print(f"GEMM float32 2048^2 on {threads} thread(s): {rate:.1f} GFLOP/s (slow class: {slow:.0f})")
    total = 0.0
    for preset in PRESETS:
        section = plain(default_config([f"llm={preset}", f"paths.cache_dir={cache}"]).llm)
        start = time.perf_counter()
        record = built_record(ensure_report_lm(cache, section["corpus"], section["lm"]))
        built = time.perf_counter() - start
        total += built
        llm = build(section, f"llm={preset}")
        exact, seconds = first_attempt_rate(llm, section, cache, args.requests)
        figures = {k: v for k, v in record.items() if k not in ("files", "spec")}
        print(f"{preset}: built in {built:.0f} s (slow class {built * rate / slow:.0f} s): {json.dumps(figures)}")
        print(
            f"  first-attempt exact-entity rate on {args.requests} held-out FINDINGS requests: "
            f"{exact:.3f} ({seconds:.1f} s)"
        )
        plan_f, plan_i = plan_rates(llm, section, cache, args.requests)
        print(f"  on {args.requests} generation-shaped requests: FINDINGS {plan_f:.3f}, IMPRESSION {plan_i:.3f}")
        run = generation_run([f"llm={preset}"], cache, args.samples)
        scaled = run["seconds"] * 3000 / args.samples
        print(
            f"  generation of {args.samples} samples: {run['seconds']} s; 3,000: ~{scaled:.0f} s here, "
            f"~{scaled * rate / slow:.0f} s slow class"
        )
        print(f"  dataset.json: {json.dumps(run['dataset_json'])}")
    print(f"both built in {total:.0f} s here, {total * rate / slow:.0f} s on the slow class (goal <= 1500)")


if __name__ == "__main__":
    main()
