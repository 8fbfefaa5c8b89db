"""train.py's in-process runner on a partially synthetic dataset (Table 4b)."""

from __future__ import annotations

import pytest

from syncxr.data.mixing import load_table
from syncxr.dataset_dirs import build_dataset_dir
from syncxr.train.training_job import run_training
from tests.helpers import TINY, compose_train

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "data, source",
    [("real_image_syn_report", "real_image+syn_report"), ("syn_image_real_report", "syn_image+real_report")],
)
def test_trains_a_few_steps_on_a_partially_synthetic_set(cache_dir, tmp_path, data, source):
    cfg = compose_train([*TINY, f"data={data}", "trainer.max_steps=3"])
    metrics = run_training(cfg, tmp_path / "run")
    table = load_table(build_dataset_dir(cfg.data.syn, cache_dir, "data.syn"), "train")
    assert metrics["train/steps"] == 3 and metrics["data/train_rows"] == len(table) > 0
    assert (table["source"] == source).all()
    assert "zeroshot_cls/chexpert/auc" in metrics
