"""train.py's handling of manifest rows whose image is missing or corrupt (data.on_error)."""

from __future__ import annotations

import shutil

import pytest

from syncxr.data.dataset_format import read_dataset, write_json_atomic, write_parquet_atomic
from syncxr.train.training_job import run_training
from tests.helpers import TINY, compose_train

pytestmark = pytest.mark.slow


def test_bad_rows_fail_named_or_are_skipped_and_counted(cache_dir, syn_dir, tmp_path):
    # 33 training rows (two batches of 16 once the missing one is left out), one image missing, one corrupt.
    df, _ = read_dataset(syn_dir)
    df = df[df["split"] == "train"].head(33).reset_index(drop=True)
    d = tmp_path / "ds"
    (d / "images").mkdir(parents=True)
    for image in df["image"][df.index != 3]:
        shutil.copyfile(syn_dir / image, d / image)
    (d / df["image"][7]).write_bytes((syn_dir / df["image"][7]).read_bytes()[:50])
    write_parquet_atomic(d / "manifest.parquet", df)
    write_json_atomic(d / "dataset.json", {"name": "damaged"})
    data = ["dataset@data.syn=path", f"data.syn.path={d}", "trainer.max_epochs=2"]

    with pytest.raises(
        FileNotFoundError, match=rf"{d}/manifest.parquet: row 3 \(id '{df['id'][3]}'\): image .* not found"
    ):
        run_training(compose_train([*TINY, *data]), tmp_path / "raise")
    metrics = run_training(compose_train([*TINY, *data, "data.on_error=skip"]), tmp_path / "skip")
    assert metrics["data/train_rows"] == 33 and metrics["data/skipped_rows"] == 2
    assert metrics["train/steps"] == 4  # 32 readable-looking rows, 2 epochs of 2 batches
