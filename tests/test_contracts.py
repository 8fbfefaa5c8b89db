"""Every class the shipped configs build satisfies its written contract (syncxr/backends.py,
syncxr/models/protocols.py), and what the code needs to know of it is declared, not probed for."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from syncxr.backends import LLM, NER, ImageEmbedder, ImageJudge, ImageToReport, TextToImage
from syncxr.config import build, plain
from syncxr.models.build import build_model, satisfied
from syncxr.models.protocols import ImageEncoder, LocalMapModel, ResNetImageEncoder, TextEncoder, VisionLanguageModel
from tests.helpers import REPO, TINY, compose_train
from tests.learned.test_text_to_image import CORPUS as T2I_CORPUS
from tests.learned.test_text_to_image import TINY as T2I_TINY

PRESET_DIR = {
    "llm": "llm",
    "ner": "ner",
    "imagegen": "imagegen",
    "i2r": "i2r",
    "curation.judge": "curation",
    "curation.embedding": "curation",
}
TINY_REPORT_LM = {
    "hidden_size": 16,
    "num_layers": 1,
    "num_heads": 2,
    "intermediate_size": 32,
    "steps": 2,
    "batch_size": 4,
}
CONTRACT = {
    "llm": LLM,
    "ner": NER,
    "imagegen": TextToImage,
    "i2r": ImageToReport,
    "curation.judge": ImageJudge,
    "curation.embedding": ImageEmbedder,
}


# The learned phantom presets train their model on first use: here a tiny one, on a tiny phantom
# real corpus, in the test's own cache.
LEARNED_TINY = {
    "syncxr.learned.ner.phantom_ner": {
        "spec": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32, "epochs": 1},
        "corpus": {"builder": "phantom", "kind": "real", "n": 60, "seed": 0, "image_size": 32},
    },
    "syncxr.learned.text_to_image.phantom_diffusion": {"corpus": T2I_CORPUS, "model": T2I_TINY},
}


def _section(key: str, preset: str) -> dict | None:
    group = PRESET_DIR[key]
    if group == "i2r":
        cfg = compose_train(["data=real_image_syn_report", f"i2r@data.syn.i2r={preset}"]).data.syn.i2r
    else:
        cfg = compose_train([f"{group}={preset}"])
        cfg = cfg.curation.get(key.split(".")[1]) if group == "curation" else cfg[group]
    return None if cfg is None else plain(cfg)


@pytest.fixture(scope="module")
def tiny_paths(tiny_llm_path, tiny_ner_path, tiny_sd_path, tiny_dino_path, tmp_path_factory) -> dict:
    """backend family of a preset -> a tiny model of that family (for the presets that load weights)."""
    from tests.reports.tiny_vlm import tiny_llava

    return {
        ("llm", "transformers"): tiny_llm_path,
        ("ner", "transformers"): tiny_ner_path,
        ("imagegen", "diffusers"): tiny_sd_path,
        ("curation.embedding", "transformers"): tiny_dino_path,
        ("i2r", "transformers"): str(tiny_llava(tmp_path_factory.mktemp("tiny_llava"))),
    }


@pytest.fixture
def releases(monkeypatch, tmp_path):
    """Fakes of the research releases some presets import (MedVersa's medomni, taming-transformers),
    and (backend family, key) -> the value a preset that requires it gets."""
    import sys

    from tests.images.test_llm_cxr_t2i import FakeLM, FakeTokenizer
    from tests.reports.fake_releases import medversa_modules, taming_modules

    for name, mod in {**medversa_modules(), **taming_modules()}.items():
        monkeypatch.setitem(sys.modules, name, mod)
    from syncxr.images import llm_cxr_t2i

    monkeypatch.setattr(llm_cxr_t2i, "AutoTokenizer", SimpleNamespace(from_pretrained=lambda p, **kw: FakeTokenizer()))
    monkeypatch.setattr(llm_cxr_t2i, "AutoModelForCausalLM", SimpleNamespace(from_pretrained=lambda p, **kw: FakeLM()))
    (tmp_path / "vq.yaml").write_text("model:\n  params: {}\n")
    torch.save({"state_dict": {}}, tmp_path / "vq.ckpt")
    return {"path": "/models/x", "vqgan_config": str(tmp_path / "vq.yaml"), "vqgan_ckpt": str(tmp_path / "vq.ckpt")}


def test_every_backend_preset_builds_an_object_of_its_contract(tiny_paths, releases, cache_dir):
    from syncxr.reports.release_code import MissingReleaseError

    seen = 0
    for key, group in PRESET_DIR.items():
        for preset in sorted(p.stem for p in (REPO / "conf" / group).glob("*.yaml")):
            section = _section(key, preset)
            if section is None:  # curation=none: no judge, no embedding
                continue
            if section.get("refused"):  # a release that cannot run here refuses, saying why
                with pytest.raises(MissingReleaseError, match="cannot run here"):
                    build(section, f"{key}={preset}")
                continue
            section.update({k: releases[k] for k in section.get("requires") or []})
            tiny = tiny_paths.get((key, section.get("backend")))
            if "lm" in section:  # a learned report LM (llm=phantom_lm_*): a tiny one, trained in seconds
                section.update(lm=TINY_REPORT_LM, cache_dir=str(cache_dir), corpus={**section["corpus"], "n": 200})
            elif section.get("_target_") in LEARNED_TINY:  # a learned phantom preset: a tiny model, tiny corpus
                section.update(LEARNED_TINY[section["_target_"]], cache_dir=str(cache_dir))
            elif tiny is not None:
                section["path"] = tiny
            if section.get("client", {}).get("model") == "???":  # a served model's name: any will do
                section["client"]["model"] = "m"
            backend = build(section, f"{key}={preset}")
            assert isinstance(backend, CONTRACT[key]), f"{key}={preset}: {type(backend).__qualname__}"
            seen += 1
    assert seen >= 20


@pytest.mark.parametrize("model", ["convirt", "gloria"])
def test_every_model_and_tower_satisfies_its_contract(model, cache_dir):
    tiny = [o for o in TINY if not o.startswith("model.")]  # ConVIRT's head sizes
    cfg = compose_train([*tiny, f"model={model}", "image_encoder=resnet18_narrow"])
    net = build_model(cfg.model, cfg.image_encoder, cfg.text_encoder)
    assert isinstance(net, VisionLanguageModel) and isinstance(net.text_encoder, TextEncoder)
    assert isinstance(net.image_encoder, ResNetImageEncoder) and net.image_encoder.has_resnet_stages
    assert net.has_local_maps == (model == "gloria") == isinstance(net, LocalMapModel)
    if model == "convirt":
        assert net.local_projection is net.image_proj
    # The training loss: a scalar under "loss".
    tok = net.text_encoder.tokenizer(["Small pleural effusion.", "No pneumothorax."], padding=True, return_tensors="pt")
    out = net(torch.rand(2, 1, 48, 48), tok["input_ids"], tok["attention_mask"])
    assert out["loss"].ndim == 0


@pytest.mark.parametrize("arch", ["vit_b_16", "swin_t"])
def test_transformer_image_towers_declare_they_have_no_resnet_stages(arch):
    tower = build(dict(compose_train([f"image_encoder={arch}"]).image_encoder), "image_encoder")
    assert isinstance(tower, ImageEncoder) and not tower.has_resnet_stages


def test_a_model_that_breaks_its_contract_is_refused_by_config_key():
    class NoDeclarations(nn.Module):  # a model that never says whether it has local maps
        def encode_image(self, images): ...

    with pytest.raises(TypeError, match="model: .*NoDeclarations is no VisionLanguageModel"):
        satisfied(NoDeclarations(), VisionLanguageModel, "model")
