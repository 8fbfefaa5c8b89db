"""paired_split: the image-text pairs of a dataset for retrieval, read like training reads them."""

from __future__ import annotations

import pandas as pd
import pytest

from syncxr.data.dataset_format import write_parquet_atomic
from syncxr.eval.retrieval import paired_split


def _dataset(tmp_path, images):
    rows = [
        {
            "id": f"r{i}",
            "image": p,
            "findings": f"F{i}.",
            "impression": f"I{i}.",
            "entities": [],
            "source": "test",
            "split": "test" if i else "train",
        }
        for i, p in enumerate(images)
    ]
    write_parquet_atomic(tmp_path / "manifest.parquet", pd.DataFrame(rows))
    return tmp_path


def test_rows_keep_their_manifest_row_and_stay_inside_the_dataset(tmp_path):
    d = _dataset(tmp_path, ["images/a.png", "images/b.png", "images/c.png"])
    split, texts = paired_split(d, "test", "report")
    assert split.rows == [1, 2] and texts == ["F1. I1.", "F2. I2."]  # rows as numbered in the manifest
    assert split.paths == [d / "images/b.png", d / "images/c.png"]
    _dataset(tmp_path, ["images/a.png", "../elsewhere/b.png"])
    with pytest.raises(ValueError, match=r"manifest.parquet: row 1 \(id 'r1'\): image '../elsewhere/b.png' is outside"):
        paired_split(d, "test", "report")
