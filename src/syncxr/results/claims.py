"""The paper's claims, tested on a sweep: each stated with its direction, the mean difference, a
bootstrap confidence interval over seeds and test images (see bootstrap.py) and whether it agrees
with the paper.

A claim compares runs that differ in one axis (data, sampling, entity ratio) and match in every
other (model, other swept axes, seed). Its quantity is a metric averaged over the datasets of a
family (e.g. mean AUC over the seen-disease sets), recomputed from each run's per-image predictions
when the suite wrote them, from metrics.json otherwise (then only seeds are resampled).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .bootstrap import Fixed, ImageMetric, MeanAUC, MeanF1, MeanValue, interval, paired_bootstrap
from .jobs import Job, ordered
from .layout import Layout, sweep_layout
from .published import stated_difference, table1_difference
from .tables import METRIC_NAMES, row_axes


@dataclass(frozen=True)
class Family:
    key: str  # seen | unseen | grounding (published/stated_averages.csv)
    label: str
    task: str
    table: str  # its datasets: those the benchmarks place in this paper table (`Benchmark.tables`)
    metrics: tuple[str, ...]


SEEN = Family("seen", "zero-shot, seen diseases", "zeroshot_cls", "table1", ("auc", "f1"))
UNSEEN = Family("unseen", "zero-shot, unseen and rare diseases", "zeroshot_cls", "table2a", ("auc", "f1"))
GROUNDING = Family("grounding", "zero-shot grounding", "zeroshot_grounding", "table2b", ("iou", "dice"))


@dataclass(frozen=True)
class Contrast:
    """`a` beats `b` along `axis` (a results.csv column), as the paper found. `a`/`b` of None: the
    axis's largest / smallest value (more entities help)."""

    axis: str
    a: str | None
    b: str | None
    families: tuple[Family, ...]
    paper: str  # the paper's claim in words, for contrasts without published numbers


EACH = "*"  # Contrast.b: each other value of the axis (a best-of-k claim: `a` beats every one)
CONTRASTS = (
    Contrast("data", "syn", "real", (SEEN, UNSEEN, GROUNDING), "synthetic beats real"),
    Contrast("data", "mix", "real", (SEEN, UNSEEN, GROUNDING), "mixed beats real"),
    Contrast("data", "mix", "syn", (SEEN, UNSEEN, GROUNDING), "mixed beats synthetic"),
    Contrast("sweep/sampling", "balanced", "longtail", (SEEN,), "balanced beats long-tailed sampling"),
    Contrast("sweep/generation.entity_ratio", None, None, (SEEN,), "more entities help"),
    # Figure 3, bottom (§4.3): the best report LLM and the best image generator, against each other one.
    Contrast("sweep/llm", "llama31_70b", EACH, (SEEN,), "Llama 3.1 70B is the best report LLM (Figure 3)"),
    Contrast("sweep/imagegen", "roentgen", EACH, (SEEN,), "RoentGen is the best image generator (Figure 3)"),
    # The same two claims in the phantom world, between the learned backends trained here (conf/llm/
    # phantom_lm_*.yaml, conf/imagegen/phantom_diffusion*.yaml): the larger LM, the better generator.
    Contrast(
        "sweep/llm", "phantom_lm_large", "phantom_lm_small", (SEEN,), "the larger LLM makes better data (Figure 3)"
    ),
    Contrast(
        "sweep/imagegen",
        "phantom_diffusion",
        "phantom_diffusion_weak",
        (SEEN,),
        "the better generator makes better data (Figure 3)",
    ),
)


@dataclass
class ClaimResult:
    who: str  # model(s) and stratum
    a: str
    b: str
    family: Family
    metric: str
    datasets: list[str]
    diff: float  # points, mean over seeds of a - b
    ci: tuple[float, float]
    seeds: int  # paired runs
    wins: int  # paired runs (same seed, model and other axes) where a is ahead
    images: bool  # resampled test images (predictions) or seeds only
    paper: str  # what the paper says
    paper_sign: int  # +1: the paper found a > b
    names: tuple[str, ...] = ()  # the datasets as the report names them

    @property
    def verdict(self) -> str:
        lo, hi = self.ci
        if lo > 0 or hi < 0:
            return "agrees with the paper" if (lo > 0) == (self.paper_sign > 0) else "disagrees with the paper"
        return "inconclusive: the interval includes 0"

    def line(self) -> str:
        op = ">" if self.diff > 0 else "<" if self.diff < 0 else "="
        sets = ", ".join(self.names or self.datasets)
        over = "seeds and test images" if self.images else "seeds only: no per-image predictions"
        return (
            f"- {self.who}, {self.family.label}, mean {METRIC_NAMES[self.metric]} over {sets}: "
            f"{self.a} {op} {self.b} by {self.diff:+.2f} points, 95% CI [{self.ci[0]:+.2f}, {self.ci[1]:+.2f}] "
            f"(bootstrap over {over}; {self.a} ahead in {self.wins}/{self.seeds} paired runs). "
            f"Paper: {self.paper}. {self.verdict[0].upper()}{self.verdict[1:]}."
        )


def _label(axis: str, value) -> str:
    return str(value) if axis == "data" else f"{axis.removeprefix('sweep/').rsplit('.', 1)[-1]}={value}"


def image_metric(job: Job, task: str, dataset: str, metric: str, ids: pd.Index | None) -> ImageMetric | None:
    """The metric of `job` on `dataset`, recomputable on resampled images (rows in `ids` order), or
    Fixed (its reported value) without predictions; None if the job has no such metric."""
    key = f"{task}/{dataset}/{metric}"
    if key not in (job.metrics or {}):
        return None
    frame = job.predictions(task, dataset) if ids is not None else None
    if frame is None:
        return Fixed(float(job.metrics[key]))
    frame = frame.set_index("id").loc[ids]
    if task == "zeroshot_grounding":
        return MeanValue(frame[metric].to_numpy())
    classes = [c.removeprefix("label/") for c in frame.columns if c.startswith("label/")]
    labels = frame[[f"label/{c}" for c in classes]].to_numpy()
    scores = frame[[f"score/{c}" for c in classes]].to_numpy()
    if metric == "auc":
        return MeanAUC(labels, scores)
    thresholds = job.thresholds(task, dataset)
    if metric == "f1" and thresholds is not None:
        return MeanF1(labels, scores, np.array([thresholds[c] for c in classes]))
    return Fixed(float(job.metrics[key]))


def _shared_ids(a: Job, b: Job, task: str, dataset: str) -> pd.Index | None:
    """The test images both runs scored (the same set, else an error naming both files)."""
    fa, fb = a.predictions(task, dataset), b.predictions(task, dataset)
    if fa is None or fb is None:
        return None
    ia, ib = pd.Index(fa["id"]), pd.Index(fb["id"])
    if set(ia) != set(ib):
        raise ValueError(
            f"{a.dir}/predictions/{task}/{dataset}.parquet and {b.dir}/predictions/{task}/"
            f"{dataset}.parquet score different test images ({len(ia)} vs {len(ib)} ids): "
            "a claim compares runs on the same test set"
        )
    label_cols = [c for c in fa.columns if c.startswith("label/")]
    if label_cols and not fa.set_index("id").loc[ia, label_cols].equals(fb.set_index("id").loc[ia, label_cols]):
        raise ValueError(f"{a.dir} and {b.dir}: the labels of {task}/{dataset} differ for the same image ids")
    return ia


def _compare(
    pairs: list[tuple[Job, Job]], family: Family, metric: str, n_boot: int, rng: np.random.Generator, layout: Layout
):
    """(datasets, per-seed observed differences, bootstrap replicates, resampled images?) or None."""
    datasets = [
        d
        for d in layout.columns.get(family.table, [])
        if all(
            f"{family.task}/{d}/{metric}" in (a.metrics or {}) and f"{family.task}/{d}/{metric}" in (b.metrics or {})
            for a, b in pairs
        )
    ]
    if not datasets:
        return None
    seeds, observed, images = [], [], True
    for a, b in pairs:
        seed_pairs = []
        for d in datasets:
            ids = _shared_ids(a, b, family.task, d)
            ma, mb = (image_metric(j, family.task, d, metric, ids) for j in (a, b))
            images &= not isinstance(ma, Fixed) and not isinstance(mb, Fixed)
            seed_pairs.append((ma, mb))
        seeds.append(seed_pairs)
        key = lambda d: f"{family.task}/{d}/{metric}"  # noqa: E731
        observed.append(np.mean([a.metrics[key(d)] - b.metrics[key(d)] for d in datasets]) * 100)
    return datasets, np.array(observed), paired_bootstrap(seeds, n_boot, rng) * 100, images


def _paper(
    contrast: Contrast,
    family: Family,
    models: list[str],
    a: str,
    b: str,
    datasets: list[str],
    metric: str,
    layout: Layout,
) -> tuple[str, int]:
    """What the paper says about this comparison, and its sign."""
    if contrast.axis == "data":
        if family is SEEN and (d := table1_difference(models, a, b, datasets, metric)) is not None:
            sign = 1 if d > 0 else -1
            return f"{a} {'>' if d > 0 else '<'} {b} by {d:+.2f} (Table 1, same models and datasets)", sign
        if (s := stated_difference(family.key, a, b, metric)) is not None:
            how = "stated" if s[1] == "stated" else "from the stated averages against real"
            over = ", ".join(layout.title(d) for d in layout.columns.get(family.table, []))
            return (
                f"{a} {'>' if s[0] > 0 else '<'} {b} by {s[0]:+.2f} ({how}: mean over ConVIRT, GLoRIA and {over})",
                1 if s[0] > 0 else -1,
            )
    return f"{contrast.paper} ({_label(contrast.axis, a)} > {_label(contrast.axis, b)})", 1


def _groups(jobs: list[Job], df: pd.DataFrame, contrast: Contrast):
    """Per stratum (model and the other swept axes): the compared values and matched seed pairs."""
    ok = df[df["status"] == "ok"]
    if contrast.axis not in ok:
        return
    by_name = {j.name: j for j in jobs}
    strata = [c for c in row_axes(df) if c != contrast.axis]
    for key, g in ok.groupby(strata, dropna=False, sort=False):
        values = ordered(g[contrast.axis].dropna().tolist())
        for a, b in _compared(contrast, values):
            ga = g[g[contrast.axis] == a].drop_duplicates("seed").set_index("seed")
            gb = g[g[contrast.axis] == b].drop_duplicates("seed").set_index("seed")
            common = sorted(set(ga.index) & set(gb.index))
            pairs = [(by_name[ga.loc[s, "job"]], by_name[gb.loc[s, "job"]]) for s in common]
            key = key if isinstance(key, tuple) else (key,)
            if pairs:
                yield dict(zip(strata, key)), a, b, pairs


def _compared(contrast: Contrast, values: list) -> list[tuple]:
    """The (a, b) value pairs a contrast compares among an axis's `values`."""
    if contrast.a is None:  # the largest against the smallest
        return [(values[-1], values[0])] if len(values) > 1 else []
    if contrast.a not in values:
        return []
    others = [v for v in values if v != contrast.a] if contrast.b == EACH else [contrast.b]
    return [(contrast.a, b) for b in others if b in values]


def _who(first: str, rest) -> str:
    """The claim's subject: `first` (model(s)), then the other swept axes as name=value."""
    return ", ".join([first] + [f"{k.removeprefix('sweep/')}={v}" for k, v in rest])


def _stratum_claim(contrast: Contrast, family: Family, metric: str, group: tuple, got: tuple, layout: Layout):
    """The claim of one stratum (one model, one value of the other axes), and what it adds to the
    pooled claim over models: (its key, (model, observed, replicates, images))."""
    stratum, a, b, _ = group
    datasets, observed, reps, images = got
    model = str(stratum.get("model", ""))
    rest = {k: v for k, v in stratum.items() if k != "model"}
    who = _who(model, rest.items())
    la, lb = _label(contrast.axis, a), _label(contrast.axis, b)
    paper, sign = _paper(contrast, family, [model], a, b, datasets, metric, layout)
    claim = ClaimResult(
        who,
        la,
        lb,
        family,
        metric,
        datasets,
        float(observed.mean()),
        interval(reps),
        len(observed),
        int((observed > 0).sum()),
        images,
        paper,
        sign,
        tuple(layout.title(d) for d in datasets),
    )
    return claim, (tuple(rest.items()), a, b, tuple(datasets)), (model, observed, reps, images)


def _pooled_claim(contrast: Contrast, family: Family, metric: str, key: tuple, per_model: list, layout: Layout):
    """The claim pooled over models: the mean of the per-model differences and replicates (as the
    paper averages over models), wins and paired runs summed."""
    rest, a, b, datasets = key
    models = [m for m, *_ in per_model]
    diff = float(np.mean([o.mean() for _, o, _, _ in per_model]))
    reps = np.mean([r for _, _, r, _ in per_model], axis=0)
    wins = sum(int((o > 0).sum()) for _, o, _, _ in per_model)
    seeds = sum(len(o) for _, o, _, _ in per_model)
    who = _who(f"all models ({', '.join(models)})", rest)
    paper, sign = _paper(contrast, family, models, a, b, list(datasets), metric, layout)
    return ClaimResult(
        who,
        _label(contrast.axis, a),
        _label(contrast.axis, b),
        family,
        metric,
        list(datasets),
        diff,
        interval(reps),
        seeds,
        wins,
        all(i for *_, i in per_model),
        paper,
        sign,
        tuple(layout.title(d) for d in datasets),
    )


def _metric_claims(contrast: Contrast, family: Family, metric: str, groups: list, n_boot: int, rng, layout: Layout):
    """The claims of one contrast on one family's metric: per stratum, then pooled over models where
    more than one model holds the same comparison."""
    results, pooled = [], {}
    for group in groups:
        got = _compare(group[3], family, metric, n_boot, rng, layout)
        if got is None:
            continue
        claim, key, entry = _stratum_claim(contrast, family, metric, group, got, layout)
        results.append(claim)
        pooled.setdefault(key, []).append(entry)
    for key, per_model in pooled.items():
        if len(per_model) >= 2:
            results.append(_pooled_claim(contrast, family, metric, key, per_model, layout))
    return results


def evaluate_claims(jobs: list[Job], df: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> list[ClaimResult]:
    """Every claim the sweep holds, per model (and per value of other swept axes) and, with more than
    one model, pooled over models (the mean of the per-model differences, as the paper averages)."""
    rng = np.random.default_rng(seed)
    results, layout = [], sweep_layout(jobs)
    for contrast in CONTRASTS:
        groups = list(_groups(jobs, df, contrast))
        for family in contrast.families:
            for metric in family.metrics:
                results += _metric_claims(contrast, family, metric, groups, n_boot, rng, layout)
    return results
