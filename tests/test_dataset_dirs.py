"""dataset_dirs.build_training_table: real, curated real and the errors of a wrong data config."""

from __future__ import annotations

import pytest

from syncxr import dataset_dirs
from tests.helpers import compose_train

CURATED = [
    "data=real",
    "phantom.n=160",
    "phantom.image_size=128",
    "real_corpus.seed=4",
    "real_corpus.low_quality_rate=0.08",
    "real_corpus.wrong_view_rate=0.05",
    "real_corpus.unpaired_rate=0.05",
]  # = the session's real_dir_128


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
    planted = raw[raw["defect"].isin(["low_quality", "wrong_view"])]
    # Most of them (not one drop that happens to be bad): the heuristic judge's recall on them.
    assert len(planted) >= 8 and len(dropped) >= 0.9 * len(planted), (len(dropped), len(planted))


def test_curate_real_needs_a_curation_config(cache_dir, real_dir_128):
    cfg = compose_train(CURATED + ["data.curate_real=true", "curation=none"])
    with pytest.raises(ValueError, match="curate_real"):
        dataset_dirs.build_training_table(cfg.data, cache_dir, 0, curation_cfg=cfg.curation)


def test_unknown_dataset_builder_is_named(cache_dir):
    with pytest.raises(ValueError, match="data.real.builder must be one of"):
        dataset_dirs.build_dataset_dir({"builder": "mimic"}, cache_dir, "data.real")


def test_real_rejects_are_the_images_the_judge_dropped_from_the_corpus(cache_dir, real_dir_128):
    import numpy as np
    import pandas as pd

    from syncxr.data.images import load_gray
    from syncxr.generation.generation_job import build_curator, generation_config

    cfg = compose_train(
        CURATED
        + [
            "corpus.n=160",
            "corpus.seed=4",
            "corpus.image_size=128",
            "corpus.low_quality_rate=0.08",
            "corpus.wrong_view_rate=0.05",
            "corpus.unpaired_rate=0.05",
            "curation.bad_bank=real_rejects",
        ]
    )
    gen = generation_config(cfg.generation)
    bank = dataset_dirs.real_rejects_reader(gen, cache_dir)()
    table = pd.read_parquet(
        next(p for p in real_dir_128.parent.glob(f"{real_dir_128.name}-curated-*")) / "curation.parquet"
    )
    judged = table[table["stage"] == "judge"]
    assert len(bank) == len(judged) > 0
    assert np.array_equal(bank[0], load_gray(judged["path"].iloc[0])[0].numpy())
    curator = build_curator(gen["curation"], lambda: bank)
    assert curator.bank.shape[0] == len(bank)
    with pytest.raises(ValueError, match="real_rejects needs"):
        build_curator(gen["curation"])
