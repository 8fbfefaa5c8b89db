"""The phantom world's image-to-report "model": an oracle radiologist that reads LABELS, not pixels.

It does not look at the image. It takes the real row's ground-truth finding keys (the `labels`
column of a phantom corpus), forgets each present finding with probability `miss_rate`, imagines
each absent one with probability `false_positive_rate`, and writes a fresh report of that reading
with the phantom report writer (new wording, sites and severities drawn at random, so the sites
need not match the image). It stands in for an image-to-report MLLM where none can be run: the
reports are new texts about the same image, with a known, configurable error rate.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..phantom.report_writer import write_report
from ..phantom.scene import sample_scene
from ..phantom.vocabulary import FINDING_KEYS


class OracleRadiologist:
    name = "oracle"
    reads_labels = True  # the dataset builder passes each row's `labels`; the images are ignored

    def __init__(self, miss_rate: float, false_positive_rate: float, negation_rate: float):
        for key, v in (
            ("miss_rate", miss_rate),
            ("false_positive_rate", false_positive_rate),
            ("negation_rate", negation_rate),
        ):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"oracle i2r {key} must be in [0, 1], got {v}")
        self.miss_rate, self.false_positive_rate = miss_rate, false_positive_rate
        self.negation_rate = negation_rate
        self.stats: Counter = Counter()

    def read(self, labels: list[str], rng: np.random.Generator) -> list[str]:
        """The findings the oracle reports for ground truth `labels`, misses and false positives included."""
        unknown = sorted(set(labels) - set(FINDING_KEYS))
        if unknown:
            raise ValueError(
                f"oracle i2r: label(s) {unknown} are not phantom findings {FINDING_KEYS}; "
                "the oracle reads phantom `labels` only (use i2r=transformers or openai_vision)"
            )
        seen = [k for k in sorted(set(labels)) if rng.random() >= self.miss_rate]
        imagined = [k for k in FINDING_KEYS if k not in labels and rng.random() < self.false_positive_rate]
        self.stats["missed"] += len(set(labels)) - len(seen)
        self.stats["false_positives"] += len(imagined)
        return seen + imagined

    def describe(self, images: list[np.ndarray], seeds: list[int], labels: list[list[str]]) -> list[str]:
        if not len(images) == len(seeds) == len(labels):
            raise ValueError(f"oracle i2r: {len(images)} images, {len(seeds)} seeds, {len(labels)} label lists")
        out = []
        for row_labels, seed in zip(labels, seeds):
            rng = np.random.default_rng([seed, 17])
            report = write_report(sample_scene(rng, self.read(list(row_labels), rng)), rng, self.negation_rate)
            out.append(f"FINDINGS: {report.findings}\nIMPRESSION: {report.impression}")
        self.stats["calls"] += len(seeds)
        return out

    def counters(self) -> dict:
        return {f"oracle_{k}": int(v) for k, v in self.stats.items()}
