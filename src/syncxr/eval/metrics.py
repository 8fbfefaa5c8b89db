"""Classification metrics per class and their means, from scikit-learn."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_curve, roc_auc_score


def best_f1_threshold(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Score threshold with the highest F1 on (y_true, scores), e.g. chosen on a validation split."""
    precision, recall, thresholds = precision_recall_curve(y_true, scores)
    f1 = 2 * precision * recall / np.clip(precision + recall, 1e-12, None)
    return float(thresholds[int(np.argmax(f1[:-1]))]) if len(thresholds) else 0.5


def classification_metrics(y_true: np.ndarray, scores: np.ndarray, thresholds: np.ndarray,
                           classes: list[str]) -> dict[str, float]:
    """`{cls}/auc|f1|acc` for each class and `auc|f1|acc` means. y_true, scores: N x C."""
    y_true, scores = np.asarray(y_true), np.asarray(scores)
    if y_true.shape != scores.shape or y_true.shape[1] != len(classes):
        raise ValueError(f"labels {y_true.shape}, scores {scores.shape} and {len(classes)} classes disagree")
    out: dict[str, float] = {}
    for c, name in enumerate(classes):
        t, s = y_true[:, c], scores[:, c]
        if t.min() == t.max():
            raise ValueError(f"class {name!r} has only {'positive' if t[0] else 'negative'} "
                             "examples: AUC is undefined")
        pred = (s >= thresholds[c]).astype(int)
        out[f"{name}/auc"] = float(roc_auc_score(t, s))
        out[f"{name}/f1"] = float(f1_score(t, pred, zero_division=0))
        out[f"{name}/acc"] = float(accuracy_score(t, pred))
    for m in ("auc", "f1", "acc"):
        out[m] = float(np.mean([out[f"{name}/{m}"] for name in classes]))
    return out
