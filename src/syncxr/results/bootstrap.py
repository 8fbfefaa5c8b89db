"""A paired two-stage bootstrap of the difference between two groups of runs.

Stage 1 resamples seeds; stage 2, within each drawn seed, resamples the test images jointly for the
two runs compared (they share the test set) and recomputes each run's metric from its per-image
predictions (mean AUC over classes, mean F1 at the suite's thresholds, mean IoU/Dice). A resample is
a count per image, so metrics are weighted sums vectorised over replicates: AUC is the
Mann-Whitney statistic over images sorted once by score (ties count one half, as scikit-learn's
roc_auc_score), so thousands of replicates stay cheap (docs/measurements.md#bootstrap-speed).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

CHUNK = 256  # replicates per vectorised batch: bounds memory at CHUNK x images


def counts(idx: np.ndarray, n: int) -> np.ndarray:
    """Index arrays (replicates x draws) -> how often each of n images was drawn (replicates x n)."""
    rows = np.arange(len(idx))[:, None] * n
    return np.bincount((idx + rows).ravel(), minlength=len(idx) * n).reshape(len(idx), n).astype(np.float64)


class ImageMetric:
    """A metric recomputable on resampled test images: `values(idx)` for an index array
    (replicates x images) returns one value per replicate."""

    n: int

    def values(self, idx: np.ndarray) -> np.ndarray:
        return np.concatenate([self._weighted(counts(idx[i : i + CHUNK], self.n)) for i in range(0, len(idx), CHUNK)])

    def full(self) -> float:
        return float(self._weighted(np.ones((1, self.n)))[0])

    def _weighted(self, w: np.ndarray) -> np.ndarray:
        """The metric with image i counted w[r, i] times, per replicate r."""
        raise NotImplementedError


def _nanmean_rows(x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():  # a replicate where every class lost its positives: NaN, dropped later
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=1)


@dataclass
class MeanAUC(ImageMetric):
    """Mean over classes of the ROC AUC; labels and scores: images x classes."""

    labels: np.ndarray
    scores: np.ndarray

    def __post_init__(self):
        labels = np.asarray(self.labels, dtype=bool)
        scores = np.asarray(self.scores, dtype=np.float64)
        self.n = len(labels)
        self._classes = []  # per class: image order by score, start of each run of equal scores, sorted labels
        for c in range(labels.shape[1]):
            order = np.argsort(scores[:, c], kind="stable")
            s = scores[order, c]
            starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
            self._classes.append((order, starts, labels[order, c].astype(np.float64)))

    def _weighted(self, w):
        per_class = []
        for order, starts, y in self._classes:
            wc = w[:, order]
            pos = np.add.reduceat(wc * y, starts, axis=1)  # weight of positives per distinct score
            neg = np.add.reduceat(wc * (1 - y), starts, axis=1)
            below = np.cumsum(neg, axis=1) - neg  # negatives scored strictly lower
            p, q = pos.sum(1), neg.sum(1)
            with np.errstate(invalid="ignore", divide="ignore"):
                auc = (pos * (below + 0.5 * neg)).sum(1) / (p * q)
            per_class.append(np.where((p > 0) & (q > 0), auc, np.nan))  # one-class resample: undefined
        return _nanmean_rows(np.stack(per_class, axis=1))


@dataclass
class MeanF1(ImageMetric):
    """Mean over classes of F1 at fixed per-class thresholds (a score >= threshold is positive)."""

    labels: np.ndarray
    scores: np.ndarray
    thresholds: np.ndarray

    def __post_init__(self):
        y = np.asarray(self.labels, dtype=bool)
        pred = np.asarray(self.scores, dtype=np.float64) >= np.asarray(self.thresholds, dtype=np.float64)[None]
        self._tp, self._fp, self._fn = ((a).astype(np.float64) for a in (y & pred, ~y & pred, y & ~pred))
        self.n = len(y)

    def _weighted(self, w):
        tp, fp, fn = w @ self._tp, w @ self._fp, w @ self._fn
        denom = 2 * tp + fp + fn
        f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)  # zero_division=0
        return f1.mean(1)


@dataclass
class MeanValue(ImageMetric):
    """Mean of a per-image value (grounding or segmentation IoU / Dice)."""

    per_image: np.ndarray

    def __post_init__(self):
        self.per_image = np.asarray(self.per_image, dtype=np.float64)
        self.n = len(self.per_image)

    def _weighted(self, w):
        return (w @ self.per_image) / w.sum(1)


@dataclass
class Fixed(ImageMetric):
    """A run without per-image predictions: its metric as reported, which images cannot move."""

    value: float
    n: int = 1

    def values(self, idx):
        return np.full(len(idx), self.value)

    def full(self):
        return self.value


# One seed of a comparison: per dataset, the (run a, run b) metrics on the same test images.
SeedPair = list[tuple[ImageMetric, ImageMetric]]


def _seed_difference(pairs: SeedPair, m: int, rng: np.random.Generator) -> np.ndarray:
    """m replicates of the mean over datasets of metric(a) - metric(b), images resampled jointly."""
    total = np.zeros(m)
    for a, b in pairs:
        if a.n != b.n:
            raise ValueError(f"paired runs have {a.n} and {b.n} test images; they must share the test set")
        idx = rng.integers(0, a.n, size=(m, a.n))
        total += a.values(idx) - b.values(idx)
    return total / len(pairs)


def paired_bootstrap(seeds: list[SeedPair], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """n_boot replicates of the mean over seeds of the per-seed difference: seeds drawn with
    replacement, and every drawn seed (each draw on its own) with its test images resampled."""
    if not seeds:
        raise ValueError("no seed holds both runs of the comparison")
    s = len(seeds)
    pick = rng.integers(0, s, size=(n_boot, s))
    out = np.zeros(n_boot)
    for k in range(s):  # the k-th seed drawn by every replicate
        for j in range(s):
            rows = np.flatnonzero(pick[:, k] == j)
            if rows.size:
                out[rows] += _seed_difference(seeds[j], rows.size, rng)
    return out / s


def interval(replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval; replicates where a metric was undefined (NaN) are left out."""
    finite = replicates[np.isfinite(replicates)]
    if not finite.size:
        return float("nan"), float("nan")
    lo, hi = np.quantile(finite, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)
