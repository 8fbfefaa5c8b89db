"""MedVersa, Table 4b's report generator, through a fake of its release's `medomni` package: the
prompt, preprocessing and sampling of the release, the answer made a report, and the refusals when
the package or the weights are missing."""

import numpy as np
import pytest
import torch

from syncxr.config import build, plain
from syncxr.paper_prerequisites import training_prerequisites
from syncxr.reports import medversa_i2r
from syncxr.reports.i2r_prompt import split_report
from syncxr.reports.medversa_i2r import CLIP_MEAN, CLIP_STD, MedVersaI2R
from syncxr.reports.release_code import MissingReleaseError
from tests.helpers import compose_train
from tests.reports.fake_releases import FakeMedVersa, medversa_modules

WORDS = {
    10: "Findings: ",
    11: "No pleural effusion.",
    12: " Impression: ",
    13: "Normal chest.",
    14: "Mild cardiomegaly.",
}
IMAGES = [np.full((40, 30), 255, np.uint8), np.zeros((50, 50), np.uint8), np.full((20, 20), 255, np.uint8)]


def paper_section(**over) -> dict:
    cfg = compose_train(["experiment=syncxr_paper", "data=real_image_syn_report"])
    return {**plain(cfg.data.syn.i2r), **over}


@pytest.fixture
def medomni(monkeypatch):
    for name, mod in medversa_modules().items():
        monkeypatch.setitem(__import__("sys").modules, name, mod)
    monkeypatch.setattr(FakeMedVersa, "words", WORDS)
    monkeypatch.setattr(FakeMedVersa, "loaded", [])
    monkeypatch.setattr(FakeMedVersa, "instances", [])
    return FakeMedVersa


def test_paper_mode_describes_real_images_with_medversa_the_phantom_world_with_its_oracle(tmp_path):
    assert compose_train(["data=real_image_syn_report"]).data.syn.i2r.name == "oracle"
    oracle = compose_train(["data=real_image_syn_report", "i2r@data.syn.i2r=oracle"]).data.syn
    assert plain(compose_train(["data=real_image_syn_report"]).data.syn) == plain(oracle)  # address unchanged
    section = paper_section()
    assert section["_target_"] == "syncxr.reports.medversa_i2r.MedVersaI2R" and section["phantom_world"] is False
    assert section["path"] is None  # required: refused until given, and listed as missing
    paper = compose_train(["experiment=syncxr_paper", "data=real_image_syn_report"])
    (weights,) = [p for p in training_prerequisites(paper, tmp_path) if p.key.startswith("data.syn.i2r")]
    assert (weights.key, weights.problem) == ("data.syn.i2r.path", "not given") and "MedVersa" in weights.what
    swept = compose_train(["experiment=syncxr_paper", "data=real_image_syn_report", "i2r@data.syn.i2r=transformers"])
    assert swept.data.syn.i2r.name == "transformers"  # the choice can still be swapped


def test_generates_as_the_release_does(medomni, monkeypatch):
    # row 0: <s> then a headed report then "###"; row 1: an unheaded answer, ended by </s> and padding
    monkeypatch.setattr(medomni, "script", [[1, 10, 11, 12, 13, 835, 10, 14], [0, 1, 14, 2, 11]])
    section = paper_section(path="/models/medversa", batch_size=2)
    i2r = build(section, "data.syn.i2r")
    assert medomni.loaded == ["/models/medversa"]
    out = i2r.describe(IMAGES, [5, 6, 7])
    model = medomni.instances[0]
    assert out[0] == "Findings: No pleural effusion. Impression: Normal chest."
    assert split_report(out[0]) == ("No pleural effusion.", "Normal chest.")
    assert out[1] == "FINDINGS: Mild cardiomegaly." and split_report(out[1]) == ("Mild cardiomegaly.", "")
    assert out[2] == out[0]  # the last, single-image batch
    assert model.prefixes == ["###Human:<img0>" + "<ImageHere>" * 9 + "</img0>"]  # batch of one
    assert model.llama_tokenizer.prompts[-1] == (
        "<context></context>How would you characterize the findings from <img0>?###Assistant:"
    )
    assert model.modals == ["cxr"] and model.num_imgs == [1]
    first = model.calls[0]
    assert first["embeds"].shape[0] == 2 and len(model.calls) == 2
    assert {k: first[k] for k in ("max_new_tokens", "num_beams", "do_sample", "top_p", "temperature")} == {
        "max_new_tokens": 450,
        "num_beams": 1,
        "do_sample": True,
        "top_p": 0.9,
        "temperature": 0.1,
    }
    assert 835 in first["eos_token_id"] and 2 in first["eos_token_id"]
    assert i2r.counters() == {"i2r_calls": 3}


def test_preprocessing_is_the_releases_clip_normalised_224_rgb():
    x = medversa_i2r.preprocess(IMAGES[:2])
    assert x.shape == (2, 1, 3, 224, 224)
    white = (1 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    black = -torch.tensor(CLIP_MEAN) / torch.tensor(CLIP_STD)
    assert torch.allclose(x[0, 0, :, 100, 100], white, atol=1e-4)
    assert torch.allclose(x[1, 0, :, 100, 100], black, atol=1e-4)


def test_refuses_without_its_release_package_or_its_weights(monkeypatch, tmp_path):
    for name in ("medomni", "medomni.common", "medomni.common.registry", "medomni.models"):
        monkeypatch.delitem(__import__("sys").modules, name, raising=False)
    with pytest.raises(
        MissingReleaseError, match=r"data.syn.i2r \(.*MedVersaI2R\): .*`medomni.common.registry`.*hyzhou/MedVersa"
    ):
        build(paper_section(path="/models/medversa"), "data.syn.i2r")
    with pytest.raises(MissingReleaseError, match=r"code_dir=.*is not a directory"):
        MedVersaI2R("/m", code_dir=str(tmp_path / "nope"), context="", question="q", batch_size=1, sampling={})
    with pytest.raises(MissingReleaseError, match=r"data.syn.i2r .*needs its weights: set i2r.path="):
        build(paper_section(), "data.syn.i2r")


def test_where_the_release_was_cloned_is_no_part_of_a_dataset_address():
    from syncxr.generation.partial_dataset import partial_hash

    spec = plain(compose_train(["experiment=syncxr_paper", "data=real_image_syn_report"]).data.syn)
    moved = {**spec, "i2r": {**spec["i2r"], "code_dir": "/elsewhere/MedVersa"}}
    assert partial_hash(moved) == partial_hash(spec)
    assert partial_hash({**spec, "i2r": {**spec["i2r"], "path": "/other/weights"}}) != partial_hash(spec)
