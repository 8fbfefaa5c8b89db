"""LLM-CXR, one of Figure 3's image generators, through fakes of its LLM and of taming-transformers'
VQ-GAN: the release's prompt and sampling, its 256-code rule, the decoding, the refusals, and the
SynCXR pipeline drawing again where the model answered no image."""

import json
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from syncxr.config import build, plain
from syncxr.dataset_dirs import generate_dataset
from syncxr.images import llm_cxr_t2i
from syncxr.images.phantom_t2i import PhantomT2I
from syncxr.paper_prerequisites import declared_missing
from syncxr.reports.release_code import MissingReleaseError
from tests.generation.test_pipeline import SMALL, gen_cfg
from tests.helpers import compose_train
from tests.reports.fake_releases import FakeVQModel, taming_modules

END, PAD = 50277, 1
PROMPT_LEN = 4


class FakeTokenizer:
    pad_token_id = PAD

    def __init__(self, size=50281):
        self.size, self.texts = size, []

    def __len__(self):
        return self.size

    def encode(self, text):
        return [END] if text == "### End" else [7, 8]

    def __call__(self, text, return_tensors="pt"):
        self.texts.append(text)
        out = {
            "input_ids": torch.arange(PROMPT_LEN)[None],
            "attention_mask": torch.ones(1, PROMPT_LEN, dtype=torch.long),
        }
        return type("Enc", (dict,), {"to": lambda self, device: self})(out)


class FakeLM:
    """Answers text, then 256 image codes, then ### End."""

    def __init__(self):
        self.calls = []

    def to(self, device):
        return self

    def eval(self):
        return self

    def generate(self, input_ids, attention_mask, **kw):
        self.calls.append({**kw, "seed_draw": torch.rand(1).item()})
        codes = [50281 + (i // 16) * 64 for i in range(256)]  # row r of the 16 x 16 map holds code 64 r
        return torch.cat([input_ids, torch.tensor([[11, 12, *codes, END]])], 1)


@pytest.fixture
def release(monkeypatch, tmp_path):
    for name, mod in taming_modules().items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr(FakeVQModel, "built", [])
    tok, lm = FakeTokenizer(), FakeLM()
    monkeypatch.setattr(llm_cxr_t2i, "AutoTokenizer", SimpleNamespace(from_pretrained=lambda path, **kw: tok))
    monkeypatch.setattr(llm_cxr_t2i, "AutoModelForCausalLM", SimpleNamespace(from_pretrained=lambda path, **kw: lm))
    (tmp_path / "vqgan.yaml").write_text("model:\n  params:\n    embed_dim: 256\n    n_embed: 1024\n")
    torch.save({"state_dict": {"w": torch.zeros(1)}}, tmp_path / "vqgan.ckpt")
    paths = {
        "path": "/models/llm-cxr",
        "vqgan_config": str(tmp_path / "vqgan.yaml"),
        "vqgan_ckpt": str(tmp_path / "vqgan.ckpt"),
    }
    return tok, lm, paths


def preset(**over) -> dict:
    return {**plain(compose_train(["imagegen=llm_cxr"]).imagegen), **over}


def test_draws_as_the_release_does(release):
    tok, lm, paths = release
    t2i = build(preset(**paths), "imagegen")
    images = t2i.generate(["Small left pleural effusion.", "No acute process."], [3, 4])
    assert tok.texts[0] == (
        "Below is an instruction that describes a task. Write a response that appropriately completes the request."
        "\n\n### Instruction:\nGenerate a chest X-ray image that corresponds to the entered free-text radiology "
        "reports for the chest X-ray image.\n\nInput:\nSmall left pleural effusion.\n\n### Response:\n"
    )
    call = lm.calls[0]
    assert {k: call[k] for k in ("max_new_tokens", "do_sample", "top_p", "top_k", "eos_token_id")} == {
        "max_new_tokens": 512,
        "do_sample": True,
        "top_p": 0.92,
        "top_k": 0,
        "eos_token_id": END,
    }
    vq = FakeVQModel.built[0]
    assert vq.params == {"embed_dim": 256, "n_embed": 1024} and vq.strict is False and "w" in vq.state
    assert vq.shape == (1, 16, 16, -1) and vq.indices[:17] == [0] * 16 + [64]
    image = images[0]
    assert image.shape == (256, 256) and image.dtype == np.uint8
    assert image[0, 0] == 0 and image[-1, 0] == round((960 / 1023) * 255)  # row 15 of the map: code 960
    assert t2i.counters() == {"llm_cxr_calls": 2, "llm_cxr_no_image": 0}
    assert llm_cxr_t2i.image_codes([50281 + 5] * 255) is None  # not 256 codes: no image


def test_the_same_seed_samples_the_same_draw(release):
    _, lm, paths = release
    t2i = build(preset(**paths), "imagegen")
    t2i.generate(["a", "b", "a"], [1, 2, 1])
    draws = [c["seed_draw"] for c in lm.calls]
    assert draws[0] == draws[2] != draws[1]


def test_refusals_name_what_is_missing(release, monkeypatch):
    _, _, paths = release
    section = preset()
    missing = declared_missing(OmegaConf.create(section), "imagegen", "LLM-CXR")
    assert [(p.key, p.problem) for p in missing] == [
        (f"imagegen.{k}", "not given") for k in ("vqgan_config", "vqgan_ckpt")
    ]
    assert declared_missing(OmegaConf.create(preset(**paths)), "imagegen", "LLM-CXR") == []
    with pytest.raises(
        MissingReleaseError, match=r"imagegen \(.*LLMCXRT2I\): LLM-CXR needs its weights: set imagegen.path="
    ):
        build(section, "imagegen")
    for name in ("taming", "taming.models", "taming.models.vqgan"):
        monkeypatch.setitem(sys.modules, name, None)  # not installed
    with pytest.raises(MissingReleaseError, match=r"`taming.models.vqgan`.*pip install taming-transformers"):
        build(preset(**paths), "imagegen")
    monkeypatch.setattr(
        llm_cxr_t2i, "AutoTokenizer", SimpleNamespace(from_pretrained=lambda p, **kw: FakeTokenizer(50277))
    )
    for name, mod in taming_modules().items():
        monkeypatch.setitem(sys.modules, name, mod)
    with pytest.raises(MissingReleaseError, match="50277 tokens, not LLM-CXR's 50281"):
        build(preset(**paths), "imagegen")


def test_cxr_irgen_is_refused_with_what_its_release_needs():
    section = plain(compose_train(["imagegen=cxr_irgen"]).imagegen)
    (refusal,) = declared_missing(OmegaConf.create(section), "imagegen", "CXR-IRGen")
    assert refusal.key == "imagegen" and refusal.problem.startswith("CXR-IRGen cannot run here as published")
    assert "CheXpert label" in refusal.problem
    with pytest.raises(MissingReleaseError, match=r"imagegen \(.*RefusedT2I\): CXR-IRGen cannot run here"):
        build(section, "imagegen")
    paper = compose_train(["experiment=syncxr_paper", "imagegen=cxr_irgen"])
    assert "path" not in paper.imagegen  # no placeholder checkpoint to run instead


class SometimesBlankT2I(PhantomT2I):
    """The phantom renderer, answering no image (None) on every first attempt."""

    def generate(self, prompts, seeds):
        return [None if s % 101 == 0 else im for s, im in zip(seeds, super().generate(prompts, seeds))]


def test_the_pipeline_draws_again_where_the_model_answered_no_image(cache_dir, tmp_path):
    gen = gen_cfg(SMALL + ["generation.n_samples=20", "generation.shard_size=20", "curation=none"])
    gen["imagegen"]["_target_"] = f"{__name__}.SometimesBlankT2I"
    out = generate_dataset(gen, tmp_path / "ds", cache_dir, progress=False)
    counters = json.loads((out / "dataset.json").read_text())["counters"]
    assert counters["images_rejected_no_image"] > 0
    assert counters["images_generated"] >= 2 * counters["images_rejected_no_image"] > 0


class _Planted:  # any object a pickle could carry besides tensors
    pass


def test_a_vqgan_checkpoint_is_read_as_tensors_only_and_must_hold_the_decoder(release, monkeypatch, tmp_path):
    _, _, paths = release
    planted = tmp_path / "planted.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "extra": _Planted()}, planted)
    with pytest.raises(ValueError, match=r"vqgan_ckpt=.*planted.ckpt: holds more than tensors, refused unread"):
        build(preset(**{**paths, "vqgan_ckpt": str(planted)}), "imagegen")
    monkeypatch.setattr(FakeVQModel, "missing", ["loss.discriminator.w", "decoder.conv_in.weight"])
    with pytest.raises(ValueError, match=r"no weights for \['decoder.conv_in.weight'\]"):
        build(preset(**paths), "imagegen")
    monkeypatch.setattr(FakeVQModel, "missing", ["loss.discriminator.w"])  # the loss alone may be missing
    build(preset(**paths), "imagegen")
