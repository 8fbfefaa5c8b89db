"""Table 4b's "synthetic image + real report" set with curation (paper mode): each drawn image is
checked by the curation and drawn again while it is rejected; uncurated sets keep their address."""

from __future__ import annotations

import json

import pytest

from syncxr.config import plain
from syncxr.data.dataset_format import read_dataset
from syncxr.dataset_dirs import build_dataset_dir
from syncxr.generation.partial_dataset import build_partial_dataset, partial_hash
from syncxr.generation.shard_store import IncompleteGeneration
from syncxr.images.phantom_t2i import PhantomT2I
from syncxr.reports.backend_failure import BackendFailure
from tests.generation.test_partial_dataset import NER, SYN_IMAGE, _tiny_real, partial_settings
from tests.helpers import compose_train


class ScriptedCurator:
    """Rejects every image of its first `reject_calls` checks (as the judge would), then passes them;
    `down`: answers BackendFailures instead."""

    def __init__(self, reject_calls: int, down: bool = False):
        self.reject_calls, self.down, self.calls = reject_calls, down, 0

    def check(self, images):
        self.calls += 1
        if self.down:
            return [BackendFailure("http_503")] * len(images)
        passed = self.calls > self.reject_calls
        return [(passed, "" if passed else "judge:Q1,Q2")] * len(images)


def _build(tmp_path, curator, name="out"):
    real = _tiny_real(tmp_path / f"real_{name}", n=4)
    settings = partial_settings("syn_image_real_report")
    t2i = PhantomT2I(image_size=32)
    return build_partial_dataset(real, tmp_path / name, settings, t2i, NER, {}, progress=False, curator=curator)


def test_rejected_images_are_drawn_again_until_they_pass(tmp_path):
    df, info = read_dataset(_build(tmp_path, ScriptedCurator(reject_calls=1)))
    assert len(df) == 4 and (df["attempts"] == 2).all()
    assert info["counters"]["images_rejected_judge"] == 4 and info["counters"]["t2i_tries"] == 8


def test_a_row_the_curation_always_rejects_fails_as_such_and_an_outage_is_retried(tmp_path):
    with pytest.raises(ValueError, match="curation_rejected"):  # no row gave a pair
        _build(tmp_path, ScriptedCurator(reject_calls=99), "never")
    with pytest.raises(IncompleteGeneration, match="curation:http_503"):
        _build(tmp_path, ScriptedCurator(0, down=True), "down")


def test_paper_mode_curates_the_set_and_the_phantom_world_keeps_its_address(cache_dir):
    assert compose_train(["data=syn_image_real_report"]).data.syn.curation is None
    paper = plain(compose_train(["data=syn_image_real_report", "experiment=syncxr_paper"]).data.syn)
    assert paper["curation"]["name"] == "paper" and paper["curation"]["bad_bank"] == "real_rejects"
    assert partial_hash({**SYN_IMAGE, "curation": None}) == partial_hash(SYN_IMAGE)
    phantom_curation = plain(compose_train(["curation=phantom"]).curation)
    curated = {**SYN_IMAGE, "curation": phantom_curation}
    assert partial_hash(curated) != partial_hash(SYN_IMAGE)
    out = build_dataset_dir(curated, cache_dir, "data.syn")
    info = json.loads((out / "dataset.json").read_text())
    assert info["config"]["curation"]["name"] == "phantom"
    assert info["counts"]["rows"] + sum(info["counts"]["failed"].values()) == info["counts"]["real_rows"]
