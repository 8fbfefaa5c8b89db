"""Curation of a real corpus: judge step, similarity step, counts, planted-defect recall, caching."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from syncxr.data.dataset_format import read_dataset, write_parquet_atomic
from syncxr.data.mixing import load_table
from syncxr.images.corpus_curation import (
    CorpusCurationSettings,
    curation_decisions,
    ensure_curated_corpus,
    removal_quality,
)
from syncxr.images.embedding import PhantomEmbedder
from syncxr.images.judge import QUESTIONS, HeuristicJudge
from tests.figures import recorded_figures


def _answers(rows: list[list[bool]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(QUESTIONS))
    df["readable"] = True
    return df


def test_all_rule_drops_only_images_rejected_on_every_question():
    answers = _answers([[False] * 6, [True] + [False] * 5, [True] * 6])
    emb = np.eye(3)
    all_rule = curation_decisions(answers, emb, CorpusCurationSettings(drop_if_no="all"))
    any_rule = curation_decisions(answers, emb, CorpusCurationSettings(drop_if_no="any"))
    assert all_rule["stage"].tolist() == ["judge", "kept", "kept"]
    assert any_rule["stage"].tolist() == ["judge", "judge", "kept"]
    assert all_rule["n_yes"].tolist() == [0, 1, 6]


def test_similarity_step_drops_kept_images_near_a_dropped_one():
    answers = _answers([[False] * 6, [True] * 6, [True] * 6, [True] * 6])
    emb = np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]])  # cosines to row 0: 0.8, 0.6, 0.0
    out = curation_decisions(answers, emb, CorpusCurationSettings(delta=0.7), chunk=1)
    assert out["stage"].tolist() == ["judge", "similarity", "kept", "kept"]
    assert out["max_sim_to_dropped"].iloc[1:].round(3).tolist() == [0.8, 0.6, 0.0]
    # Nothing dropped by the judge: no bank, so the similarity step removes nothing.
    clean = curation_decisions(answers.iloc[1:].reset_index(drop=True), emb[1:], CorpusCurationSettings(delta=0.0))
    assert (clean["stage"] == "kept").all()


def test_unreadable_images_are_their_own_stage():
    answers = _answers([[True] * 6, [False] * 6])
    answers.loc[1, "readable"] = False
    out = curation_decisions(answers, np.zeros((2, 3)), CorpusCurationSettings())
    assert out["stage"].tolist() == ["kept", "unreadable"]


@pytest.mark.parametrize(
    "kwargs, match",
    [({"drop_if_no": "some"}, "drop_if_no"), ({"delta": 1.5}, "delta"), ({"batch_size": 0}, "batch_size")],
)
def test_bad_settings_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CorpusCurationSettings(**kwargs)


def test_removal_quality_against_planted_defects():
    stage = pd.Series(["judge", "kept", "similarity", "kept", "judge"])
    defect = pd.Series(["low_quality", "wrong_view", "none", "unpaired", "wrong_view"])
    q = removal_quality(stage, defect)
    assert (q["planted"], q["removed"], q["removed_planted"]) == (3, 3, 2)
    assert q["recall"] == pytest.approx(2 / 3) and q["precision"] == pytest.approx(2 / 3)
    assert q["recall_wrong_view"] == 0.5 and q["precision_similarity"] == 0.0


def _copy_with_corrupt_image(src, dst):
    shutil.copytree(src, dst)
    df, _ = read_dataset(dst)
    victim = dst / df["image"].iloc[0]
    victim.write_bytes(victim.read_bytes()[:40])  # a truncated PNG
    return df["id"].iloc[0]


def test_phantom_real_corpus_loses_its_planted_bad_images(real_dir_128, tmp_path):
    src = tmp_path / "corpus"
    broken = _copy_with_corrupt_image(real_dir_128, src)
    settings = CorpusCurationSettings(drop_if_no="any", delta=0.9, batch_size=16)
    with recorded_figures() as figures:
        out = ensure_curated_corpus(
            src, HeuristicJudge(), PhantomEmbedder(), settings, {"judge": "heuristic"}, progress=False
        )
    counts = json.loads((out / "curation.json").read_text())
    assert counts["unreadable"] == 1
    assert counts["unreadable"] + counts["judge"] + counts["similarity"] + counts["kept"] == counts["rows"] == 160
    q = counts["removal_vs_planted"]
    assert q["planted"] >= 10 and q["recall"] >= 0.9 and q["precision"] >= 0.9, q
    # The curated corpus is a dataset whose rows are exactly the kept ones, with readable image paths.
    kept = load_table(out, split=None)
    table = pd.read_parquet(out / "curation.parquet")
    assert set(kept["id"]) == set(table.loc[table["stage"] == "kept", "id"])
    assert broken not in set(kept["id"])
    assert all(p.endswith(".png") and os.path.isfile(p) for p in kept["path"])
    # The contact sheet: a row of up to 8 examples per stage that dropped or kept images, each one of
    # that stage, titled with its id (and, when the judge dropped it, the questions answered NO).
    sheet = figures["contact_sheet.png"]
    stages = [s for s in ("kept", "judge", "similarity") if counts[s]]
    assert stages[:2] == ["kept", "judge"] and len(sheet.axes) == 8 * len(stages)
    for r, stage in enumerate(stages):
        shown = [ax for ax in sheet.axes[8 * r : 8 * (r + 1)] if ax.get_images()]
        assert len(shown) == min(8, counts[stage]), stage
        for ax in shown:
            sid, note = (ax.get_title() + "\n").split("\n")[:2]
            assert table.loc[table["id"] == sid, "stage"].item() == stage
            assert note.startswith("NO: ") == (stage == "judge"), (stage, note)

    # Cached: a second call finds the same directory without judging again.
    class NoJudge:
        def judge(self, images):
            raise AssertionError("judged again")

    assert (
        ensure_curated_corpus(src, NoJudge(), PhantomEmbedder(), settings, {"judge": "heuristic"}, progress=False)
        == out
    )
    # The kept images are linked in: no manifest path leaves the curated directory. A curated
    # corpus of the old layout (paths into the source, "../corpus/images/...") is linked in on use.
    assert all(p.startswith(str(out) + "/") for p in kept["path"])
    old = kept.drop(columns=["path", "manifest", "manifest_row"])
    old["image"] = [os.path.relpath(src / p, out) for p in read_dataset(src)[0].set_index("id").loc[old["id"], "image"]]
    assert old["image"].str.startswith("../corpus/").all()
    write_parquet_atomic(out / "manifest.parquet", old)
    shutil.rmtree(out / "images")
    info = json.loads((out / "dataset.json").read_text())
    del info["images"]
    (out / "dataset.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="outside the dataset directory"):
        load_table(out, split=None)
    ensure_curated_corpus(src, NoJudge(), PhantomEmbedder(), settings, {"judge": "heuristic"}, progress=False)
    relinked = load_table(out, split=None)
    assert list(relinked["id"]) == list(kept["id"]) and list(relinked["path"]) == list(kept["path"])
