"""LLM-CXR (Lee et al. 2023), one of Figure 3's image generators, run the way its public release
(github.com/hyn2028/llm-cxr) runs report-to-CXR: it is not a diffusion model but an instruction-tuned
causal LLM (Dolly-style, on Pythia) whose vocabulary was extended by the 1,024 codes of a VQ-GAN; asked
for an image, it answers 256 image tokens that the VQ-GAN (taming-transformers' `VQModel`) decodes
into a 256 x 256 radiograph.

  prompt  the Dolly instruction format: intro, "### Instruction:", the report-to-CXR instruction,
          "Input:", the report text (SynCXR: the IMPRESSION), "### Response:"
  sample  do_sample, top-p 0.92, top-k 0, up to 512 new tokens, stopping at "### End"
  decode  the generated ids >= 50,281 (the text vocabulary) less 50,281 are the codes; exactly 256 of
          them (16 x 16) make an image, anything else is no image (a content failure, retried)

One prompt at a time, as the release does, each sampled from its own seed. The LLM loads through
transformers (local path or hub id); the VQ-GAN needs taming-transformers and the release's VQ-GAN
config and checkpoint, and is refused, naming what is missing, without them.
"""

from __future__ import annotations

import pickle

import numpy as np
import torch
from omegaconf import OmegaConf
from transformers import AutoModelForCausalLM, AutoTokenizer

from ..reports.release_code import MissingReleaseError, import_release, require_weights

TEXT_VOCAB = 50281  # official hyn2028/llm-cxr training/mimiccxr_vq_dataset.py (CXR_VQ_TOKENIZER_LEN)
CODES, GRID = 256, 16  # CXR_VQ_VQ_LEN: a 16 x 16 code map
INTRO = "Below is an instruction that describes a task. Write a response that appropriately completes the request."
END_KEY = "### End"  # official training/consts.py
INSTALL = (
    "LLM-CXR decodes its image tokens with taming-transformers' VQ-GAN (github.com/CompVis/taming-transformers): "
    "pip install taming-transformers, or clone it and set imagegen.taming_dir=<the clone>"
)


def prompt_text(instruction: str, report: str) -> str:
    """The release's generation prompt (training/consts.py PROMPT_FOR_GENERATION_FORMAT)."""
    return f"{INTRO}\n\n### Instruction:\n{instruction}\n\nInput:\n{report}\n\n### Response:\n"


def image_codes(new_tokens: list[int]) -> list[int] | None:
    """The VQ codes among the generated tokens, or None unless there are exactly 256 (the release's rule)."""
    codes = [t - TEXT_VOCAB for t in new_tokens if t >= TEXT_VOCAB]
    return codes if len(codes) == CODES else None


def load_vqgan(config_path: str, ckpt_path: str, taming_dir: str | None):
    """taming-transformers' VQModel built from the release's config, with its checkpoint's weights."""
    vqgan = import_release("taming.models.vqgan", backend="LLM-CXR", code_dir=taming_dir, install=INSTALL)
    model = vqgan.VQModel(**OmegaConf.to_container(OmegaConf.load(config_path).model.params))
    try:  # tensors only: a checkpoint is data, never code to run (a pickled object is refused)
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)["state_dict"]
    except pickle.UnpicklingError as e:
        raise ValueError(f"imagegen.vqgan_ckpt={ckpt_path}: holds more than tensors, refused unread ({e})") from e
    # strict=False as the release loads it: the checkpoint also holds the training loss (discriminator);
    # a missing decoder weight, though, would decode noise.
    missing = [k for k in model.load_state_dict(state, strict=False).missing_keys if not k.startswith("loss.")]
    if missing:
        raise ValueError(f"imagegen.vqgan_ckpt={ckpt_path}: no weights for {missing[:3]} (not this config's VQ-GAN?)")
    return model.eval()


class LLMCXRT2I:
    name = "llm_cxr"
    quality: dict = {}  # measured figures (syncxr.backends); a learned preset's factory sets its own

    def __init__(
        self,
        path: str | None,
        *,
        vqgan_config: str | None,
        vqgan_ckpt: str | None,
        taming_dir: str | None,
        instruction: str,
        sampling: dict,
        device: str | None = None,
    ):
        hint = "LLM-CXR's release, github.com/hyn2028/llm-cxr, links its LLM and VQ-GAN checkpoints"
        path = require_weights(path, backend="LLM-CXR", key="imagegen.path", hint=hint)
        config = require_weights(vqgan_config, backend="LLM-CXR", key="imagegen.vqgan_config", hint=hint)
        ckpt = require_weights(vqgan_ckpt, backend="LLM-CXR", key="imagegen.vqgan_ckpt", hint=hint)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.vqgan = load_vqgan(config, ckpt, taming_dir).to(self.device)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        if len(self.tokenizer) != TEXT_VOCAB:
            raise MissingReleaseError(
                f"LLM-CXR: {path} has a tokenizer of {len(self.tokenizer)} tokens, not LLM-CXR's {TEXT_VOCAB}: "
                "not an LLM-CXR checkpoint"
            )
        end = self.tokenizer.encode(END_KEY)
        if len(end) != 1:
            raise MissingReleaseError(
                f"LLM-CXR: {path}: {END_KEY!r} is not one token ({end}): not an LLM-CXR checkpoint"
            )
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(self.device).eval()
        self.instruction, self.sampling, self.end_id = instruction, dict(sampling), end[0]
        self.stats = {"llm_cxr_calls": 0, "llm_cxr_no_image": 0}

    def _decode(self, codes: list[int]) -> np.ndarray:
        indices = torch.tensor(codes, device=self.device)
        quant = self.vqgan.quantize.get_codebook_entry(indices, shape=(1, GRID, GRID, -1))
        rgb = self.vqgan.decode(quant).float().clamp(-1, 1).add(1).div(2)  # 1 x 3 x 256 x 256 in [0, 1]
        return (rgb[0].mean(0).cpu().numpy() * 255).round().astype(np.uint8)

    @torch.no_grad()
    def generate(self, prompts: list[str], seeds: list[int]) -> list[np.ndarray | None]:
        if len(prompts) != len(seeds):
            raise ValueError(f"llm_cxr: {len(prompts)} prompts but {len(seeds)} seeds")
        out: list[np.ndarray | None] = []
        for report, seed in zip(prompts, seeds):
            enc = self.tokenizer(prompt_text(self.instruction, report), return_tensors="pt").to(self.device)
            torch.manual_seed(int(seed))
            ids = self.model.generate(
                **enc, eos_token_id=self.end_id, pad_token_id=self.tokenizer.pad_token_id, **self.sampling
            )
            codes = image_codes(ids[0, enc["input_ids"].shape[1] :].tolist())
            self.stats["llm_cxr_calls"] += 1
            self.stats["llm_cxr_no_image"] += codes is None
            out.append(None if codes is None else self._decode(codes))
        return out

    def counters(self) -> dict:
        return dict(self.stats)
