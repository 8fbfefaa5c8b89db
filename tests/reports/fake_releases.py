"""Stand-ins for the research releases some backends import (MedVersa's `medomni`, taming-transformers'
`taming` for LLM-CXR's VQ-GAN), injected into sys.modules by the tests: they record what the backend
calls them with and answer scripted outputs, so the code path of each backend runs without the
release or its weights."""

from __future__ import annotations

import types

import torch

# MedVersa's Llama tokenizer, as far as the fake needs it: <unk>=0, <s>=1, </s>=2, "###"=835.
MEDVERSA_VOCAB = {0: "<unk>", 1: "<s>", 2: "</s>", 835: "###"}


class FakeMedVersaTokenizer:
    eos_token_id = 2

    def __init__(self, words: dict[int, str]):
        self.vocab = {**MEDVERSA_VOCAB, **words}
        self.prompts: list[str] = []

    def __call__(self, text, return_tensors="pt", add_special_tokens=True):
        self.prompts.append(text)
        ids = torch.tensor([[5, 6, 7]])
        out = types.SimpleNamespace(input_ids=ids)
        out.to = lambda device: out
        return out

    def decode(self, ids, add_special_tokens=False):
        return "".join(self.vocab[i] for i in ids)


class FakeMedVersa:
    """`from_pretrained(path)` records the path; generation answers `script` (token id lists, one per
    image of a batch, cycled)."""

    script: list[list[int]] = []
    words: dict[int, str] = {}
    loaded: list[str] = []
    instances: list = []

    def __init__(self):
        self.llama_tokenizer = FakeMedVersaTokenizer(self.words)
        self.calls: list[dict] = []
        outer = self

        class Llama:
            def generate(self, inputs_embeds, **kw):
                outer.calls.append({"embeds": inputs_embeds, **kw})
                n = inputs_embeds.shape[0]
                rows = [outer.script[i % len(outer.script)] for i in range(n)]
                width = max(map(len, rows))
                return torch.tensor([r + [0] * (width - len(r)) for r in rows])

        self.llama_model = Llama()

    @classmethod
    def from_pretrained(cls, path):
        cls.loaded.append(path)
        model = cls()
        cls.instances.append(model)
        return model

    def to(self, device):
        return self

    def eval(self):
        return self

    def encode_img(self, image, modals):
        self.pixels, self.modals = image, modals
        b, s = image.shape[:2]
        return torch.ones(b, s, 9, 4), torch.ones(b, s, dtype=torch.long), None

    def prompt_wrap(self, img, atts, prefixes, num_imgs):
        self.prefixes, self.num_imgs = prefixes, num_imgs
        return img.flatten(1, 2), atts

    def prompt_concat(self, img, atts, tokens):
        text = torch.zeros(img.shape[0], tokens.input_ids.shape[1], img.shape[2])
        return torch.cat([img, text], 1), atts


def medversa_modules() -> dict[str, types.ModuleType]:
    """sys.modules entries of a fake `medomni` whose registry serves FakeMedVersa as "medomni"."""
    registry = types.SimpleNamespace(get_model_class=lambda name: {"medomni": FakeMedVersa}[name])
    mods = {
        name: types.ModuleType(name)
        for name in ("medomni", "medomni.common", "medomni.common.registry", "medomni.models")
    }
    mods["medomni.common.registry"].registry = registry
    return mods


class FakeVQModel:
    """taming.models.vqgan.VQModel: records its params and state dict; decodes a code map into an
    image whose row r is the mean code of row r of the 16 x 16 map (scaled into [-1, 1])."""

    built: list = []

    def __init__(self, **params):
        self.params, self.state = params, None
        self.quantize = types.SimpleNamespace(get_codebook_entry=self._entry)
        FakeVQModel.built.append(self)

    missing: list = []  # what load_state_dict reports missing

    def load_state_dict(self, state, strict=True):
        self.state, self.strict = state, strict
        return types.SimpleNamespace(missing_keys=list(self.missing), unexpected_keys=[])

    def eval(self):
        return self

    def to(self, device):
        return self

    def _entry(self, indices, shape):
        self.indices, self.shape = indices.tolist(), shape
        return indices.float().view(1, 16, 16, 1).permute(0, 3, 1, 2)

    def decode(self, quant):
        rows = quant.mean(dim=3, keepdim=True).expand(1, 3, 16, 16) / 1023 * 2 - 1
        return torch.nn.functional.interpolate(rows, size=(256, 256), mode="nearest")


def taming_modules() -> dict[str, types.ModuleType]:
    """sys.modules entries of a fake `taming` whose models.vqgan holds FakeVQModel."""
    mods = {name: types.ModuleType(name) for name in ("taming", "taming.models", "taming.models.vqgan")}
    mods["taming.models.vqgan"].VQModel = FakeVQModel
    return mods
