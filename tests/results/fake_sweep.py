"""Fake sweep directories for the report tests: job dirs laid out as train.py writes them (overrides,
Hydra choices, resolved config, metrics.json, evaluation.json, per-image predictions), with metrics
computed by scikit-learn from predictions drawn at a chosen signal strength per run. No training."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import f1_score, roc_auc_score

CLASSES = {
    "chexpert": ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"],
    "rsna": ["pneumonia"],
    "padchest_unseen": ["alveolar pattern", "interstitial pattern"],
    "siim": ["pneumothorax"],
    "covid_rural": ["covid"],
}
N_IMAGES = 160
THRESHOLD = 0.5


def test_set(dataset: str, n: int = N_IMAGES):
    """Ids, labels and a per-image difficulty shared by every run (they score the same images)."""
    rng = np.random.default_rng(zlib.crc32(dataset.encode()))
    labels = (rng.random((n, len(CLASSES[dataset]))) < 0.3).astype(int)
    labels[0], labels[1] = 1, 0  # every class has positives and negatives
    difficulty = rng.normal(size=(n, len(CLASSES[dataset])))
    return [f"{dataset}-{i:04d}" for i in range(n)], labels, difficulty


def scores_for(dataset: str, signal: float, run_seed: int):
    ids, labels, difficulty = test_set(dataset)
    noise = np.random.default_rng([run_seed, int(signal * 1000)]).normal(size=labels.shape)
    logit = signal * (2 * labels - 1) + 0.8 * difficulty + 0.6 * noise
    return ids, labels, 1 / (1 + np.exp(-logit))


def grounding_for(dataset: str, signal: float, run_seed: int):
    """Per-image IoU and Dice of a run on the positives of a grounding set (shared ids and difficulty)."""
    ids, _, difficulty = test_set(dataset)
    noise = np.random.default_rng([run_seed, int(signal * 1000), 7]).normal(size=len(ids))
    iou = np.clip(0.2 + 0.3 * signal + 0.1 * difficulty[:, 0] + 0.05 * noise, 0, 1)
    return ids, iou, 2 * iou / (1 + iou)


def write_job(
    root: Path,
    overrides: list[str],
    signals: dict[str, float] | None,
    *,
    recipe: str = "phantom",
    real_benchmarks: tuple[str, ...] = (),
    extra_metrics: dict | None = None,
    grounding: tuple[str, ...] = (),
) -> Path:
    """A job dir; `signals` maps dataset -> signal strength (None: the job failed, no metrics); the
    datasets in `grounding` get zero-shot grounding predictions at the first dataset's signal."""
    ov = dict(o.split("=", 1) for o in overrides)
    d = root / ",".join(overrides)
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    choices = {"recipe": recipe, "data": ov.get("data", "syn"), "model": ov.get("model", "convirt")}
    (d / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"choices": choices}}}))
    datasets = list(signals or {})
    zs = [ds.replace("padchest_", "padchest:") for ds in datasets if ds in CLASSES]
    benches = {"chexpert", "rsna", "padchest", "siim"}
    config = {
        "seed": int(ov.get("seed", 0)),
        "data": {"name": choices["data"]},
        "model": {"name": choices["model"]},
        "benchmark": {b: {"root": f"/data/{b}" if b in real_benchmarks else None} for b in benches},
        "task": {"zeroshot_cls": {"datasets": zs}},
    }
    (d / "resolved_config.yaml").write_text(yaml.safe_dump(config))
    if signals is None:
        return d
    metrics, details = {}, {}
    run_seed = zlib.crc32(d.name.encode())
    for ds, signal in signals.items():
        ids, labels, scores = scores_for(ds, signal, run_seed)
        frame = {"id": ids}
        aucs, f1s = [], []
        for c, name in enumerate(CLASSES[ds]):
            frame[f"label/{name}"], frame[f"score/{name}"] = labels[:, c], scores[:, c]
            aucs.append(roc_auc_score(labels[:, c], scores[:, c]))
            f1s.append(f1_score(labels[:, c], scores[:, c] >= THRESHOLD, zero_division=0))
        (d / "predictions" / "zeroshot_cls").mkdir(parents=True, exist_ok=True)
        pd.DataFrame(frame).to_parquet(d / "predictions" / "zeroshot_cls" / f"{ds}.parquet")
        metrics[f"zeroshot_cls/{ds}/auc"], metrics[f"zeroshot_cls/{ds}/f1"] = float(np.mean(aucs)), float(np.mean(f1s))
        details[ds] = {"thresholds": {name: THRESHOLD for name in CLASSES[ds]}}
    for ds in grounding:
        ids, iou, dice = grounding_for(ds, next(iter(signals.values())), run_seed)
        (d / "predictions" / "zeroshot_grounding").mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"id": ids, "iou": iou, "dice": dice, "random_iou": iou / 3, "random_dice": dice / 3}).to_parquet(
            d / "predictions" / "zeroshot_grounding" / f"{ds}.parquet"
        )
        metrics.update(
            {
                f"zeroshot_grounding/{ds}/iou": float(iou.mean()),
                f"zeroshot_grounding/{ds}/dice": float(dice.mean()),
                f"zeroshot_grounding/{ds}/random_iou": float(iou.mean() / 3),
            }
        )
    metrics.update(extra_metrics or {})
    (d / "metrics.json").write_text(json.dumps(metrics))
    (d / "evaluation.json").write_text(json.dumps({"details": {"zeroshot_cls": details}}))
    return d


def write_sweep(
    root: Path, signal: dict, seeds=(0, 1), models=("convirt",), axis: str = "data", datasets=("chexpert",), **kw
) -> Path:
    """A sweep over `axis`: `signal[(value, seed)]` (or `signal[value]`) is each run's signal strength."""
    root.mkdir(parents=True, exist_ok=True)
    values = sorted({k[0] if isinstance(k, tuple) else k for k in signal})
    for model in models:
        for value in values:
            for seed in seeds:
                s = signal.get((value, seed), signal.get(value))
                over = [f"{axis}={value}", f"model={model}", f"seed={seed}"]
                if axis != "data":
                    over.append("data=syn")
                write_job(root, over, None if s is None else {ds: s for ds in datasets}, **kw)
    return root
