"""Which classes a benchmark is scored on: the twin's lists, the published ones on real data, and
class sets defined by a rule over the test split's positives."""

import numpy as np
import pytest
from omegaconf import OmegaConf

from syncxr.benchmarks import build_benchmark
from syncxr.eval.class_sets import resolve_classes
from tests.helpers import compose_train

COUNTS = {"a": 120, "b": 60, "c": 10, "d": 0, "normal": 500, "seen1": 80}


def positives(labels):
    return np.array([COUNTS[c] for c in labels])


BENCH = OmegaConf.create(
    {
        "_target_": "syncxr.benchmarks.padchest.PadChest",
        "root": None,
        "classes": ["twin1"],
        "class_sets": {"seen": ["twin1"]},
        "published": {
            "labels": list(COUNTS),
            "classes": ["seen1"],
            "class_sets": {
                "seen": ["seen1"],
                "other": ["normal"],
                "unseen": {"exclude": ["seen", "other"], "min_test_positives": 50},
                "rare": {"exclude": ["seen", "normal"], "min_test_positives": 1, "max_test_positives": 49},
            },
        },
    }
)


def test_the_twin_lists_apply_to_a_twin_and_the_published_ones_to_real_data():
    twin = build_benchmark(BENCH, "benchmark.x").labels
    assert resolve_classes(twin, None, "benchmark.x", positives) == ["twin1"]
    assert resolve_classes(twin, "seen", "benchmark.x", positives) == ["twin1"]
    real = build_benchmark(OmegaConf.merge(BENCH, {"root": "/data/x"}), "benchmark.x").labels
    assert resolve_classes(real, None, "benchmark.x", positives) == ["seen1"]
    assert resolve_classes(real, "unseen", "benchmark.x", positives) == ["a", "b"]
    assert resolve_classes(real, "rare", "benchmark.x", positives) == ["c"]  # d has no positive at all
    with pytest.raises(ValueError, match=r"benchmark.x.class_sets has no 'tail'"):
        resolve_classes(real, "tail", "benchmark.x", positives)
    bad = OmegaConf.merge(real, {"class_sets": {"odd": {"min_positives": 3}}})
    with pytest.raises(ValueError, match="unknown rule key"):
        resolve_classes(bad, "odd", "benchmark.x", positives)


def test_the_shipped_padchest_and_chestxray14_lists():
    cfg = compose_train(["benchmark.padchest.root=/data/padchest", "benchmark.chestxray14.root=/data/cxr14"]).benchmark
    padchest, chestxray14 = (build_benchmark(cfg[b], f"benchmark.{b}").labels for b in ("padchest", "chestxray14"))
    pub = cfg.padchest.published
    assert len(pub.labels) == 193 and len(set(pub.labels)) == 193 and set(pub.class_sets.seen) <= set(pub.labels)
    counts = {c: 60 for c in pub.labels}
    unseen = resolve_classes(padchest, "unseen", "benchmark.padchest", lambda ls: np.array([counts[c] for c in ls]))
    assert len(unseen) == 193 - len(pub.class_sets.seen) - 4 and "normal" not in unseen
    assert len(resolve_classes(chestxray14, None, "benchmark.chestxray14", positives)) == 14


def test_paper_mode_scores_mavls_padchest_lists_on_the_real_padchest():
    # MAVL's lists (HieuPhan33/CVPR2024_MAVL Zero-shot_classification/test.py), as the paper scored them.
    paper = ["experiment=syncxr_paper"]
    real = compose_train([*paper, "benchmark.padchest.root=/data/padchest"]).benchmark.padchest
    labels = build_benchmark(real, "benchmark.padchest").labels

    def sets(name):
        return resolve_classes(labels, name, "benchmark.padchest", lambda ls: np.full(len(ls), 100))

    seen, unseen, rare = sets("seen"), sets("unseen"), sets("rare")
    assert (len(seen), len(unseen), len(rare)) == (14, 60, 39)  # unseen: MAVL's 26 with its rare 39, each once
    assert resolve_classes(labels, None, "benchmark.padchest", None) == seen  # Table 1 scores the seen list
    assert seen[:3] == ["normal", "pleural effusion", "pacemaker"] and {"edema", "catheter", "fracture"} <= set(seen)
    assert unseen[:2] == ["hypoexpansion basal", "non axial articular degenerative changes"]
    assert {"COPD signs", "flattened diaphragm", "double J stent"} <= set(unseen) and len(set(unseen)) == 60
    assert rare[0] == "suture material" and rare[-1] == "double J stent" and "consolidation" not in rare
    assert set(rare) <= set(unseen) and not set(seen) & set(unseen)
    # Without paper mode the real PadChest keeps its rule-based reading; the twin is the same either way.
    plain = compose_train(["benchmark.padchest.root=/data/padchest"]).benchmark.padchest
    assert "min_test_positives" in build_benchmark(plain, "benchmark.padchest").labels.class_sets.unseen
    twins = [build_benchmark(compose_train(o).benchmark.padchest, "benchmark.padchest").labels for o in (paper, [])]
    assert twins[0] == twins[1] and "edema" not in twins[0].class_sets.seen
