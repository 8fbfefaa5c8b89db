import json

import pandas as pd
import pytest

from syncxr.data.dataset_format import read_dataset
from syncxr.phantom.corpus import PhantomCorpusSpec, ensure_phantom_corpus
from syncxr.phantom.vocabulary import FINDING_KEYS


def _finding_counts(df):
    return pd.Series([k for ks in df["labels"] for k in ks]).value_counts().reindex(FINDING_KEYS, fill_value=0)


def test_syn_corpus_is_balanced_and_clean(syn_dir):
    df, info = read_dataset(syn_dir)
    counts = _finding_counts(df)
    assert counts.max() - counts.min() <= 0.1 * counts.max() + 1
    assert set(df["defect"]) == {"none"}
    assert (df["view"] == "PA").all()
    assert info["counts"]["findings"] == counts.to_dict()


def test_real_corpus_is_long_tailed_with_counted_defects(real_dir):
    df, info = read_dataset(real_dir)
    counts = _finding_counts(df)
    assert counts["support_device"] > 3 * counts["nodule"]
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
        from syncxr.phantom.vocabulary import FINDINGS
        reported = {k for k, t in FINDINGS.items() if mentioned & set(t.synonyms)}
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


@pytest.mark.parametrize("kwargs,match", [
    ({"kind": "fake"}, "kind"), ({"n": 1}, "n must be"), ({"unpaired_rate": 1.5}, "unpaired_rate"),
    ({"prevalence": {"fracture": 0.1}}, "unknown finding"), ({"findings_per_image": (0.5, 0.2)}, "sum to 1"),
])
def test_bad_specs_are_rejected_with_the_key_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PhantomCorpusSpec(**kwargs)
