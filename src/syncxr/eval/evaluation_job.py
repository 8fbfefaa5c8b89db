"""Evaluation suites: `run_suite` runs the tasks of a suite on a model (train.py calls it on the model
it just trained, evaluate.py on a finished run's checkpoint); `run_evaluation` is evaluate.py's job.

Outputs of a suite, in its output dir: `evaluation.json` (protocol, threshold sources, skips,
timings), `results.md` and `grounding.png`; the caller writes the flat metrics to `metrics.json`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from ..config_choices import PROTOCOLS
from ..data.dataset_format import write_json_atomic, write_parquet_atomic
from ..data.durable import write_text_atomic
from ..data.run_lock import RunDirLock
from ..launch.accelerator import build_accelerator
from .checkpoint import load_trained, weights_fingerprint
from .context import Context, EvalSettings
from .embeddings import EmbeddingCache
from .report import grounding_figure, markdown_report
from .tasks import TASK_FUNCTIONS

log = logging.getLogger(__name__)


def eval_settings(section, seed: int, normalize: str = "standard") -> EvalSettings:
    """The run-level settings of a suite from a config section holding protocol, batch_size and
    num_workers (evaluate.py's root, train.py's `evaluation`), and the pixel normalisation the model
    was pre-trained with (its `loader.normalize`)."""
    if section.protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {section.protocol!r}")
    return EvalSettings(
        protocol=str(section.protocol),
        seed=int(seed),
        batch_size=int(section.batch_size),
        num_workers=int(section.num_workers),
        normalize=str(normalize),
    )


def check_tasks(tasks) -> None:
    unknown = [t for t in tasks if t not in TASK_FUNCTIONS]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; choose from {list(TASK_FUNCTIONS)}")
    if not tasks:
        raise ValueError(f"no task selected: task=[...] with any of {list(TASK_FUNCTIONS)}")


def run_suite(ctx: Context, tasks: DictConfig, out_dir: Path, header: dict) -> dict[str, float]:
    """Runs every task of `tasks` (name -> task config, in order) on the fresh context `ctx` (the model,
    its settings, the benchmark configs); writes evaluation.json, results.md and grounding.png into
    `out_dir` and returns the flat metrics."""
    check_tasks(tasks)
    t0 = time.perf_counter()
    settings, image_size, cache = ctx.settings, ctx.image_size, ctx.cache
    torch.manual_seed(settings.seed)
    ctx.model.eval()
    metrics: dict[str, float] = {}
    timings = {}
    for name, tcfg in tasks.items():
        t = time.perf_counter()
        metrics.update(TASK_FUNCTIONS[name](ctx, tcfg))
        timings[name] = time.perf_counter() - t
    twins = ctx.info.get("phantom_twins")
    if twins:  # never silent: a table of phantom numbers must not pass for the real benchmarks
        header = {**header, "phantom twins (not the real benchmarks)": ", ".join(twins)}
        log.warning(
            "evaluated on phantom twins, not the real benchmarks: %s (give benchmark.<name>.root=...)", ", ".join(twins)
        )
    header = {
        **header,
        "protocol": f"{settings.protocol} (thresholds: "
        + ("validation split" if settings.protocol == "val" else "best on the test split, as published")
        + ")",
        "image size": image_size,
        "pixel values": settings.normalize,
        "tasks": ", ".join(tasks),
        "embedding cache": f"{cache.directory} ({cache.hits} hits, {cache.misses} misses)",
    }
    write_json_atomic(
        out_dir / "evaluation.json",
        {
            "protocol": settings.protocol,
            "checkpoint": header.get("checkpoint"),
            "image_size": image_size,
            "normalize": settings.normalize,
            "tasks": list(tasks),
            "details": dict(ctx.info),
            "cache": {"dir": str(cache.directory), "hits": cache.hits, "misses": cache.misses},
            "timing_s": {**timings, "total": time.perf_counter() - t0},
        },
    )
    write_predictions(ctx.predictions, out_dir / "predictions")
    write_text_atomic(out_dir / "results.md", markdown_report(metrics, ctx.info, header))
    if ctx.cases:
        grounding_figure(ctx.cases, out_dir / "grounding.png")
    return metrics


def write_predictions(predictions: dict, directory: Path) -> None:
    """One parquet per "<task>/<dataset>" (as `<task>/<dataset>.parquet`), each written atomically."""
    for key, frame in predictions.items():
        path = directory / f"{key}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_parquet_atomic(path, frame)


def read_predictions(run_dir: str | Path) -> dict:
    """The per-image predictions of an evaluated run ("<task>/<dataset>" -> frame)."""
    import pandas as pd  # noqa: PLC0415

    root = Path(run_dir) / "predictions"
    return {str(p.relative_to(root).with_suffix("")): pd.read_parquet(p) for p in sorted(root.rglob("*.parquet"))}


def run_evaluation(cfg: DictConfig, out_dir: str | Path) -> dict[str, float]:
    """evaluate.py: runs the suite of `cfg.task` on checkpoint `cfg.checkpoint`; writes metrics.json
    beside the suite's outputs. Another live evaluation writing `out_dir` makes it fail at once."""
    out_dir = Path(out_dir)
    with RunDirLock(out_dir):
        return _evaluate_into(cfg, out_dir)


def _evaluate_into(cfg: DictConfig, out_dir: Path) -> dict[str, float]:
    settings = eval_settings(cfg, cfg.seed)
    check_tasks(cfg.get("task") or {})
    cache_dir = Path(cfg.paths.cache_dir).expanduser().resolve()
    write_text_atomic(out_dir / "resolved_config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    model, tokenizer, train_cfg = load_trained(cfg.checkpoint, cache_dir)
    # As the checkpoint was pre-trained (runs from before loader.normalize existed: the standard one).
    settings = dataclasses.replace(settings, normalize=str(train_cfg.loader.get("normalize", "standard")))
    accelerator = build_accelerator(str(cfg.precision), bool(cfg.cpu))
    model.to(accelerator.device)
    cache = EmbeddingCache(cfg.get("embedding_cache"), weights_fingerprint(cfg.checkpoint))
    image_size = int(cfg.image_size or train_cfg.loader.image_size)
    header = {"checkpoint": str(Path(cfg.checkpoint).expanduser().resolve())}
    ctx = Context(
        settings,
        cfg.get("benchmark"),
        model,
        tokenizer,
        int(train_cfg.text_encoder.max_length),
        accelerator,
        image_size,
        cache,
        cache_dir,
    )
    metrics = run_suite(ctx, cfg.task, out_dir, header)
    write_json_atomic(out_dir / "metrics.json", metrics)
    return metrics


def load_metrics(out_dir: str | Path) -> dict[str, float]:
    return json.loads((Path(out_dir) / "metrics.json").read_text())
