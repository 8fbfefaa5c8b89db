import json

import numpy as np
import pandas as pd
import pytest

from syncxr.data.dataset_format import read_dataset
from syncxr.entities.vocabulary import gini
from syncxr.phantom.corpus import PhantomCorpusSpec, draw_longtail_labels, ensure_phantom_corpus, finding_stats
from syncxr.phantom.frequencies import (
    ANCHOR_PREVALENCE,
    NIH_FINDINGS_PER_IMAGE,
    NIH_LABELS,
    REAL_GINI_RANGE,
    real_prevalence,
)
from syncxr.phantom.vocabulary import FINDING_KEYS


def _finding_counts(df):
    return pd.Series([k for ks in df["labels"] for k in ks]).value_counts().reindex(FINDING_KEYS, fill_value=0)


def test_syn_corpus_is_balanced_and_clean(syn_dir):
    df, info = read_dataset(syn_dir)
    counts = _finding_counts(df)
    assert counts.max() - counts.min() <= 1
    assert set(df["defect"]) == {"none"}
    assert (df["view"] == "PA").all()
    assert info["counts"]["findings"] == counts.to_dict()


def test_real_corpus_is_long_tailed_with_counted_defects(real_dir):
    df, info = read_dataset(real_dir)
    counts = _finding_counts(df)
    assert counts["infiltration"] > 10 * counts["hernia"]
    assert info["finding_stats"] == finding_stats(counts.to_dict())
    assert info["calibration"]["anchor_prevalence_percent"] == ANCHOR_PREVALENCE
    defects = info["counts"]["defects"]
    for name in ("low_quality", "wrong_view", "unpaired"):
        assert defects[name] == int((df["defect"] == name).sum()) > 0
    assert (df.loc[df["defect"] == "wrong_view", "view"] == "LATERAL").all()


def test_unpaired_rows_carry_another_images_report(real_dir):
    df, _ = read_dataset(real_dir)
    unpaired = df[df["defect"] == "unpaired"]
    mismatched = 0
    for _, row in unpaired.iterrows():
        mentioned = {e["name"] for e in row["entities"] if e["type"] in ("ABNORMALITY", "DISEASE")}
        own = set(row["labels"])
        from syncxr.phantom.vocabulary import term_index

        reported = {term_index()[m][0] for m in mentioned}
        mismatched += reported != own
    assert mismatched >= len(unpaired) // 2  # a swapped report rarely matches the image by chance


def test_images_exist_with_the_configured_size(syn_dir):
    from PIL import Image

    df, _ = read_dataset(syn_dir)
    for rel in df["image"].head(5):
        with Image.open(syn_dir / rel) as im:
            assert im.size == (64, 64) and im.mode == "L"


def test_corpus_is_cached_by_config_hash(cache_dir, syn_dir):
    spec = PhantomCorpusSpec(kind="syn", n=96, seed=3, image_size=64)
    stamp = (syn_dir / "manifest.parquet").stat().st_mtime_ns
    assert ensure_phantom_corpus(spec, cache_dir, progress=False) == syn_dir
    assert (syn_dir / "manifest.parquet").stat().st_mtime_ns == stamp  # not rebuilt
    other = PhantomCorpusSpec(kind="syn", n=96, seed=4, image_size=64)
    assert other.hash != spec.hash
    assert json.loads((syn_dir / "dataset.json").read_text())["hash"] == spec.hash


def test_same_seed_gives_the_same_corpus(tmp_path):
    spec = PhantomCorpusSpec(kind="real", n=30, seed=9, image_size=48)
    a, _ = read_dataset(ensure_phantom_corpus(spec, tmp_path / "a", progress=False))
    b, _ = read_dataset(ensure_phantom_corpus(spec, tmp_path / "b", progress=False))
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"kind": "fake"}, "kind"),
        ({"n": 1}, "n must be"),
        ({"unpaired_rate": 1.5}, "unpaired_rate"),
        ({"prevalence": {"fracture": 0.1}}, "unknown finding"),
        ({"findings_per_image": (0.5, 0.2)}, "^findings_per_image must"),
        ({"real_findings_per_image": (0.9, 0.2, -0.1)}, "real_findings_per_image must"),
        ({"prevalence": {"hernia": 0.0}}, "positive"),
    ],
)
def test_bad_specs_are_rejected_with_the_key_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PhantomCorpusSpec(**kwargs)


def _corpus_labels(n=3000, seed=0):
    spec = PhantomCorpusSpec(kind="real", n=n, seed=seed)
    return draw_longtail_labels(spec, np.random.default_rng([seed, 7]))


def test_real_corpus_has_the_skew_of_real_labelled_corpora():
    labels = _corpus_labels()
    counts = pd.Series([k for ks in labels for k in ks]).value_counts().reindex(FINDING_KEYS, fill_value=0)
    stats = finding_stats(counts.to_dict())
    assert stats["findings"] == len(FINDING_KEYS) >= 30
    assert REAL_GINI_RANGE[0] <= stats["gini"] <= REAL_GINI_RANGE[1], stats
    assert stats["max_min_ratio"] >= 50, stats
    # The fourteen ChestX-ray14 labels keep their published ranking and skew (Gini 0.465 there).
    nih = counts[list(NIH_LABELS)]
    assert abs(gini(nih) - 0.465) < 0.02
    assert list(nih.sort_values(ascending=False, kind="stable").index[:3]) == [
        "infiltration",
        "pleural_effusion",
        "atelectasis",
    ]
    # Relative frequencies are the anchors', up to rounding to whole images.
    expect = pd.Series(real_prevalence()) * len(labels)
    assert (abs(counts - expect.reindex(FINDING_KEYS)) <= 1.0).all()


def test_real_corpus_has_the_number_of_findings_profile_of_chestxray14():
    labels = _corpus_labels(n=2000, seed=5)
    k = pd.Series([len(ks) for ks in labels]).value_counts().sort_index()
    assert list(k.index) == [0, 1, 2, 3, 4]
    assert (abs(k.to_numpy() / 2000 - np.array(NIH_FINDINGS_PER_IMAGE)) <= 1 / 2000).all()
    assert all(len(set(ks)) == len(ks) for ks in labels)  # no finding twice in an image
    assert _corpus_labels(n=2000, seed=5) == labels and _corpus_labels(n=2000, seed=6) != labels


def test_reports_alone_are_those_of_the_rendered_corpus(tmp_path):
    from syncxr.phantom.corpus import corpus_reports

    spec = PhantomCorpusSpec(kind="real", n=60, seed=2, image_size=48, unpaired_rate=0.1)
    alone = corpus_reports(spec, tmp_path)  # nothing cached: no image is rendered
    assert not (tmp_path / "datasets").exists()
    built, _ = read_dataset(ensure_phantom_corpus(spec, tmp_path, progress=False))
    train = built[built["split"] == "train"].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone, train)
    pd.testing.assert_frame_equal(corpus_reports(spec, tmp_path), train)  # now read from the cache
