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
