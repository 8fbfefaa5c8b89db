"""Evaluation metrics: classification (scikit-learn), overlap (IoU/Dice) and retrieval (Recall@K)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_curve, roc_auc_score


def best_f1_threshold(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Score threshold with the highest F1 on (y_true, scores), e.g. chosen on a validation split."""
    precision, recall, thresholds = precision_recall_curve(y_true, scores)
    f1 = 2 * precision * recall / np.clip(precision + recall, 1e-12, None)
    return float(thresholds[int(np.argmax(f1[:-1]))]) if len(thresholds) else 0.5


def classification_metrics(
    y_true: np.ndarray, scores: np.ndarray, thresholds: np.ndarray, classes: list[str]
) -> dict[str, float]:
    """`{cls}/auc|f1|acc` for each class and `auc|f1|acc` means. y_true, scores: N x C."""
    y_true, scores = np.asarray(y_true), np.asarray(scores)
    if y_true.shape != scores.shape or y_true.shape[1] != len(classes):
        raise ValueError(f"labels {y_true.shape}, scores {scores.shape} and {len(classes)} classes disagree")
    out: dict[str, float] = {}
    for c, name in enumerate(classes):
        t, s = y_true[:, c], scores[:, c]
        if t.min() == t.max():
            raise ValueError(f"class {name!r} has only {'positive' if t[0] else 'negative'} examples: AUC is undefined")
        pred = (s >= thresholds[c]).astype(int)
        out[f"{name}/auc"] = float(roc_auc_score(t, s))
        out[f"{name}/f1"] = float(f1_score(t, pred, zero_division=0))
        out[f"{name}/acc"] = float(accuracy_score(t, pred))
    for m in ("auc", "f1", "acc"):
        out[m] = float(np.mean([out[f"{name}/{m}"] for name in classes]))
    return out


def auc_metrics(y_true: np.ndarray, scores: np.ndarray, classes: list[str]) -> dict[str, float]:
    """`{cls}/auc` per class and the mean `auc`."""
    y_true, scores = np.asarray(y_true), np.asarray(scores)
    out = {}
    for c, name in enumerate(classes):
        t = y_true[:, c]
        if t.min() == t.max():
            raise ValueError(f"class {name!r} has only {'positive' if t[0] else 'negative'} examples: AUC is undefined")
        out[f"{name}/auc"] = float(roc_auc_score(t, scores[:, c]))
    out["auc"] = float(np.mean([out[f"{n}/auc"] for n in classes]))
    return out


def iou_dice(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image IoU and Dice of boolean masks N x H x W (or one H x W mask).

    Both empty counts as a perfect match (1.0); one empty and the other not as 0.
    """
    pred, target = np.asarray(pred, dtype=bool), np.asarray(target, dtype=bool)
    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape")
    single = pred.ndim == 2
    if single:
        pred, target = pred[None], target[None]
    axes = tuple(range(1, pred.ndim))
    inter = (pred & target).sum(axes).astype(np.float64)
    union = (pred | target).sum(axes).astype(np.float64)
    total = pred.sum(axes) + target.sum(axes).astype(np.float64)
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    dice = np.where(total > 0, 2 * inter / np.maximum(total, 1), 1.0)
    return (iou[0], dice[0]) if single else (iou, dice)


def recall_at_k(similarity: np.ndarray, ks=(1, 5, 10)) -> dict[int, float]:
    """Share of queries (rows) whose match (the item with the same index) is among the top K
    columns. Ties are broken against the match (a tie with a wrong item counts as ranked above)."""
    sim = np.asarray(similarity, dtype=np.float64)
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"similarity must be a square N x N matrix, got {sim.shape}")
    own = np.diag(sim)[:, None]
    rank = (sim >= own).sum(1) - 1  # items scored at least as high as the match, the match excluded
    return {k: float(np.mean(rank < k)) for k in ks}


def class_key(name: str) -> str:
    """A class name as it appears in metric keys: "Pleural Effusion" -> "pleural_effusion"."""
    return name.lower().replace(" ", "_")


def prefix_metrics(task: str, dataset: str, metrics: dict[str, float], suffix: str = "") -> dict[str, float]:
    """`{cls}/{m}` and `{m}` keys -> the project's `<task>/<dataset>[/<class>]/<metric>` scheme."""
    out = {}
    for k, v in metrics.items():
        cls, _, metric = k.rpartition("/")
        metric = f"{metric}{suffix}"
        out[f"{task}/{dataset}/{class_key(cls)}/{metric}" if cls else f"{task}/{dataset}/{metric}"] = float(v)
    return out


def bootstrap_ci(values, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-image `values` (resampling images)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng([seed, 17])
    means = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)
