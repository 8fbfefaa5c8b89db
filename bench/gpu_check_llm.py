"""gpu_check.py's learned report-LM step: llm=phantom_lm_small (trained on first use on the CPU, or
read from the cache) writes held-out FINDINGS through TransformersLLM on the device, in float32 and
in bfloat16 (GPU only), each request with its own seed; reported: requests per second each way, the
first-attempt exact-entity rate each way (the lexicon NER finds exactly the asked entities), and the
share of texts bfloat16 leaves unchanged (per-row seeding makes them comparable). --tiny: a tiny LM
on a tiny corpus, in seconds."""

from __future__ import annotations

import time

import pandas as pd
import torch
from bench_common import default_config

from syncxr.config import plain
from syncxr.entities.lexicon_ner import phantom_lexicon_ner
from syncxr.learned.real_corpus import corpus_spec
from syncxr.learned.report_lm import ensure_report_lm
from syncxr.learned.report_pairs import findings_requests
from syncxr.phantom.corpus import corpus_reports
from syncxr.reports.loop import entity_key
from syncxr.reports.transformers_llm import TransformersLLM

TINY = [
    "phantom.n=120",
    "phantom.image_size=32",
    "llm.lm.hidden_size=16",
    "llm.lm.num_layers=1",
    "llm.lm.num_heads=2",
    "llm.lm.intermediate_size=32",
    "llm.lm.steps=10",
    "llm.lm.warmup_steps=2",
    "llm.lm.request_pairs=50",
    "llm.max_new_tokens=16",
]


def _write(path: str, section: dict, dtype: str, requests) -> tuple[float, list[str | None]]:
    llm = TransformersLLM(
        path,
        batch_size=int(section["batch_size"]),
        max_new_tokens=int(section["max_new_tokens"]),
        temperature=float(section["temperature"]),
        top_p=float(section["top_p"]),
        dtype=dtype,
    )
    llm.generate(requests[: llm.batch_size])  # warm-up (kernels, allocator)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    texts = llm.generate(requests)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return len(requests) / (time.perf_counter() - start), texts


def learned_lm_rate(tiny: bool, cache: str, n_requests: int = 512) -> dict:
    """Requests per second and first-attempt exact rate of the learned report LM (float32 and, on a
    GPU, bfloat16)."""
    cfg = default_config(["llm=phantom_lm_small", f"paths.cache_dir={cache}", *(TINY if tiny else [])])
    section = plain(cfg.llm)
    start = time.perf_counter()
    path = str(ensure_report_lm(section["cache_dir"], section["corpus"], section["lm"], progress=not tiny))
    ready_s = time.perf_counter() - start
    ner = phantom_lexicon_ner()
    rows = corpus_reports(corpus_spec(section["corpus"]), cache, "val")
    n = 16 if tiny else n_requests
    rows = pd.concat([rows] * -(-n // len(rows))).head(n)  # a small val split asked again, with new seeds
    requests = findings_requests(rows, ner, seed=1)

    def exact(texts) -> float:
        return sum(entity_key(ner.extract(t or "")) == entity_key(r.entities) for t, r in zip(texts, requests)) / len(
            requests
        )

    fp32, texts32 = _write(path, section, "float32", requests)
    out = {
        "build_or_load_s": round(ready_s, 1),
        "requests": len(requests),
        "fp32_requests_per_s": round(fp32, 1),
        "fp32_exact": round(exact(texts32), 3),
    }
    if torch.cuda.is_available():
        bf16, texts16 = _write(path, section, "bfloat16", requests)
        same = sum(a == b for a, b in zip(texts32, texts16)) / len(requests)
        out.update(
            bf16_requests_per_s=round(bf16, 1), bf16_exact=round(exact(texts16), 3), bf16_same_text=round(same, 3)
        )
    return out
