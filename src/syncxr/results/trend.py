"""A monotone-trend claim: "zero-shot classification improves as more entities are used" (§4.3,
Figure 3 top) over every swept entity ratio (25-100 %), not only the two ends.

The statistic is Spearman's rank correlation between the entity ratio and the family's metric (the
mean over its datasets) across the ratios, per seed, averaged over seeds. Its interval is the same
two-stage bootstrap as the pairwise claims (bootstrap.py): seeds drawn with replacement, then within
each drawn seed the test images resampled jointly for all of that seed's runs (they share the test
set), each run's metric recomputed from its per-image predictions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from .bootstrap import Fixed, interval
from .claims import SEEN, ClaimResult, Family, _shared_ids, evaluate_claims, image_metric
from .jobs import Job, ordered
from .layout import Layout, sweep_layout
from .tables import METRIC_NAMES, row_axes

AXIS = "sweep/generation.entity_ratio"
MIN_VALUES = 3  # a trend needs more than the two ends
PAPER = "zero-shot classification improves as more entities are used (§4.3, Figure 3 top)"


@dataclass
class TrendClaim(ClaimResult):
    """`diff` is the mean Spearman rho over seeds (not points); `wins`: seeds with rho > 0."""

    values: tuple = ()

    def line(self) -> str:
        sets = ", ".join(self.names or self.datasets)
        over = "seeds and test images" if self.images else "seeds only: no per-image predictions"
        ratios = ", ".join(f"{v:g}" for v in self.values)
        return (
            f"- {self.who}, {self.family.label}, mean {METRIC_NAMES[self.metric]} over {sets}: trend over "
            f"entity_ratio {ratios}: Spearman rho {self.diff:+.2f}, 95% CI [{self.ci[0]:+.2f}, {self.ci[1]:+.2f}] "
            f"(bootstrap over {over}; rho > 0 in {self.wins}/{self.seeds} seeds). "
            f"Paper: {self.paper}. {self.verdict[0].upper()}{self.verdict[1:]}."
        )


def _rho(values: np.ndarray, metrics: np.ndarray) -> np.ndarray:
    """Spearman rho of `values` (V,) against each row of `metrics` (replicates x V); NaN for a row
    with no spread."""
    x = rankdata(values)
    x = x - x.mean()
    y = rankdata(metrics, axis=1)
    y = y - y.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (y @ x) / np.sqrt((y**2).sum(1) * (x**2).sum())


def _seed_runs(runs: list[Job], family: Family, metric: str, datasets: list[str]):
    """Per dataset, the metric of each run (one seed, every ratio) on the same test images."""
    out = []
    for d in datasets:
        ids = None
        for other in runs[1:]:
            ids = _shared_ids(runs[0], other, family.task, d)
        out.append([image_metric(j, family.task, d, metric, ids) for j in runs])
    return out


def _seed_rho(per_dataset: list, values: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """m replicates of one seed's rho, images resampled jointly for its runs (per dataset)."""
    total = np.zeros((m, len(values)))
    for metrics in per_dataset:
        idx = rng.integers(0, metrics[0].n, size=(m, metrics[0].n))
        total += np.stack([mt.values(idx) for mt in metrics], axis=1)
    return _rho(values, total / len(per_dataset))


def _bootstrap(seeds: list, values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    s = len(seeds)
    pick = rng.integers(0, s, size=(n_boot, s))
    out = np.zeros(n_boot)
    for k in range(s):
        for j in range(s):
            rows = np.flatnonzero(pick[:, k] == j)
            if rows.size:
                out[rows] += _seed_rho(seeds[j], values, rows.size, rng)
    return out / s


def _strata(jobs: list[Job], df: pd.DataFrame):
    """Per stratum (model and the other swept axes): its ratios and, per seed that ran every one of
    them, the runs in ratio order."""
    ok = df[df["status"] == "ok"]
    if AXIS not in ok:
        return
    by_name = {j.name: j for j in jobs}
    strata = [c for c in row_axes(df) if c != AXIS]
    for key, g in ok.groupby(strata, dropna=False, sort=False):
        values = ordered(g[AXIS].dropna().tolist())
        if len(values) < MIN_VALUES:
            continue
        by_seed = g.drop_duplicates([AXIS, "seed"]).pivot(index="seed", columns=AXIS, values="job")
        runs = [[by_name[n] for n in row[values]] for _, row in by_seed.iterrows() if row[values].notna().all()]
        if runs:
            yield dict(zip(strata, key if isinstance(key, tuple) else (key,))), values, runs


def _claim(stratum: dict, values: list, runs: list, family: Family, metric: str, n_boot: int, rng, layout: Layout):
    datasets = [
        d
        for d in layout.columns.get(family.table, [])
        if all(f"{family.task}/{d}/{metric}" in (j.metrics or {}) for seed in runs for j in seed)
    ]
    if not datasets:
        return None
    x = np.array([float(v) for v in values])
    seeds = [_seed_runs(seed, family, metric, datasets) for seed in runs]
    observed = np.array([_rho(x, np.array([[sum(m.full() for m in per) for per in zip(*s)]]))[0] for s in seeds])
    images = all(not isinstance(m, Fixed) for s in seeds for per in s for m in per)
    rest = ", ".join(f"{k.removeprefix('sweep/')}={v}" for k, v in stratum.items() if k != "model")
    who = ", ".join(x for x in (str(stratum.get("model", "")), rest) if x)
    reps = _bootstrap(seeds, x, n_boot, rng)
    return TrendClaim(
        who,
        "more entities",
        "fewer",
        family,
        metric,
        datasets,
        float(np.nanmean(observed)),
        interval(reps),
        len(observed),
        int((observed > 0).sum()),
        images,
        PAPER,
        1,
        tuple(layout.title(d) for d in datasets),
        tuple(x),
    )


def trend_claims(jobs: list[Job], df: pd.DataFrame, n_boot: int, rng, layout: Layout) -> list[ClaimResult]:
    """The entity-ratio trend claim of every stratum with three or more ratios, per metric of the
    seen-disease family."""
    out = []
    for stratum, values, runs in _strata(jobs, df):
        for metric in SEEN.metrics:
            if (claim := _claim(stratum, values, runs, SEEN, metric, n_boot, rng, layout)) is not None:
                out.append(claim)
    return out


def all_claims(jobs: list[Job], df: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> list[ClaimResult]:
    """Every claim a sweep holds: the pairwise ones (claims.py), then the entity-ratio trend."""
    rng = np.random.default_rng([seed, 1])
    return evaluate_claims(jobs, df, n_boot, seed) + trend_claims(jobs, df, n_boot, rng, sweep_layout(jobs))
