"""dataset_dirs.build_training_table: real, curated real and the errors of a wrong data config."""

from __future__ import annotations

import pytest

from syncxr import dataset_dirs
from tests.helpers import compose_train

CURATED = ["data=real", "phantom.n=160", "phantom.image_size=128", "data.real.seed=4",
           "data.real.low_quality_rate=0.08", "data.real.wrong_view_rate=0.05",
           "data.real.unpaired_rate=0.05"]  # = the session's real_dir_128


def test_curate_real_trains_on_the_curated_corpus(cache_dir, real_dir_128):
    raw_cfg = compose_train(CURATED)
    raw = dataset_dirs.build_training_table(raw_cfg.data, cache_dir, 0, curation_cfg=raw_cfg.curation)
    cfg = compose_train(CURATED + ["data.curate_real=true"])
    cur = dataset_dirs.build_training_table(cfg.data, cache_dir, 0, curation_cfg=cfg.curation)
    assert 0 < len(raw) - len(cur) < 0.2 * len(raw)
    assert set(cur["id"]) < set(raw["id"])
    # What the curation dropped were the planted bad images; the unpaired ones it cannot see.
    dropped = raw[~raw["id"].isin(cur["id"])]
    assert set(dropped["defect"]) <= {"low_quality", "wrong_view"}


def test_curate_real_needs_a_curation_config(cache_dir, real_dir_128):
    cfg = compose_train(CURATED + ["data.curate_real=true", "curation=none"])
    with pytest.raises(ValueError, match="curate_real"):
        dataset_dirs.build_training_table(cfg.data, cache_dir, 0, curation_cfg=cfg.curation)


def test_unknown_dataset_builder_is_named(cache_dir):
    with pytest.raises(ValueError, match="data.real.builder must be one of"):
        dataset_dirs.build_dataset_dir({"builder": "mimic"}, cache_dir, "data.real")
