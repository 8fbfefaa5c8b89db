import pandas as pd

from syncxr.phantom.benchmarks import CHEXPERT5, CHEXPERT_LABELS, ChexpertTwinSpec, ensure_chexpert_twin


def test_chexpert_twin_has_the_published_layout(cache_dir):
    root = ensure_chexpert_twin(ChexpertTwinSpec(n_test=40, n_valid=20, image_size=48), cache_dir, progress=False)
    for split, n in (("valid", 20), ("test", 40)):
        df = pd.read_csv(root / f"{split}.csv")
        assert list(df.columns) == ["Path", *CHEXPERT_LABELS]
        assert len(df) == n
        assert all((root / p).is_file() for p in df["Path"])
        assert df["Path"].str.match(rf"{split}/patient\d{{5}}/study1/view1_frontal\.png").all()
        # No Finding is exactly the rows without any positive label.
        others = df[[c for c in CHEXPERT_LABELS if c != "No Finding"]].sum(axis=1)
        assert ((others == 0) == (df["No Finding"] == 1)).all()
    test = pd.read_csv(root / "test.csv")
    assert (test[list(CHEXPERT5)].sum() > 0).all()


import pytest  # noqa: E402

from syncxr.data.benchmarks import read_chexpert_split, read_rsna, read_siim  # noqa: E402
from syncxr.data.dataset_format import config_hash  # noqa: E402
from syncxr.phantom.benchmarks import (PHANTOM_VERSION, TwinSpec, _render, _split_labels,  # noqa: E402
                                       ensure_twin)


def test_chexpert_twin_without_train_split_keeps_its_hash(cache_dir):
    from dataclasses import asdict
    spec = ChexpertTwinSpec(n_test=40, n_valid=20, image_size=48)
    legacy = {k: v for k, v in asdict(spec).items() if k != "n_train"}
    assert spec.hash == config_hash({"version": PHANTOM_VERSION, "benchmark": "chexpert", **legacy})
    with_train = ChexpertTwinSpec(n_test=40, n_valid=20, image_size=48, n_train=10)
    assert with_train.hash != spec.hash
    root = ensure_chexpert_twin(with_train, cache_dir, progress=False)
    train = read_chexpert_split(root, "train.csv", list(CHEXPERT5))
    assert len(train) == 10
    # valid/test images are the same whether or not a train split is added
    old = ensure_chexpert_twin(spec, cache_dir, progress=False)
    assert (old / "test.csv").read_text() == (root / "test.csv").read_text()


def test_twin_is_cached_and_counts_are_exact(cache_dir):
    spec = TwinSpec("siim", n_train=0, n_valid=0, n_test=20, image_size=48, prevalence=0.3)
    root = ensure_twin(spec, cache_dir, progress=False)
    stamp = (root / "benchmark.json").stat().st_mtime_ns
    assert ensure_twin(spec, cache_dir, progress=False) == root
    assert (root / "benchmark.json").stat().st_mtime_ns == stamp  # not rebuilt
    s = read_siim(root, "test.csv")
    assert s.labels.sum() == 6  # round(0.3 * 20), exactly
    assert not (root / "train.csv").exists()
    with pytest.raises(ValueError, match="no phantom twin 'mimic'"):
        TwinSpec("mimic")


def test_rsna_twin_boxes_enclose_the_rendered_consolidation(cache_dir):
    spec = TwinSpec("rsna", n_train=0, n_valid=0, n_test=16, image_size=64)
    root = ensure_twin(spec, cache_dir, progress=False)
    s = read_rsna(root, "test.csv", ["pneumonia"])
    labels = _split_labels(spec, 1, 16)
    for i in range(16):
        image, masks = _render(spec, 1, i, labels[i])
        assert s.labels[i, 0] == ("consolidation" in labels[i])
        assert (s.load(i)[0].numpy() == image).all()  # the DICOM holds the rendered pixels
        if s.labels[i, 0]:
            box = s.mask(i, image.shape)
            m = masks["consolidation"]
            assert (box | ~m).all()  # every consolidation pixel is inside a box
            assert box.sum() <= 3 * m.sum() + 16  # and the boxes are tight
