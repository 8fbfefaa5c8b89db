"""An instruction LLM through `transformers`: chat template, left-padded batched generation in which
each text is a function of its own request's seed (syncxr.reports.row_sampling), whatever the batch."""

from __future__ import annotations

import zlib

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList

from .requests import ReportRequest
from .row_sampling import PerRowGumbelSampler

HALF = ("float16", "bfloat16")


def model_dtype(dtype: str, device: str):
    """The torch dtype to load with: `auto` is the checkpoint's own on a GPU and float32 on the CPU;
    half precision is refused off a GPU (slow there, and not what a CPU run should silently do)."""
    if dtype not in ("auto", "float32", *HALF):
        raise ValueError(f"llm.dtype must be auto, float32, float16 or bfloat16, got {dtype!r}")
    on_gpu = device.startswith("cuda")
    if dtype in HALF and not on_gpu:
        raise ValueError(f"llm.dtype={dtype} needs a CUDA device, this run is on {device!r}: use float32 or auto")
    if dtype == "bfloat16" and not torch.cuda.is_bf16_supported():
        raise ValueError("llm.dtype=bfloat16: this GPU does not support bfloat16; use float16")
    if dtype == "auto":
        return "auto" if on_gpu else torch.float32
    return getattr(torch, dtype)


class TransformersLLM:
    name = "transformers"
    quality: dict = {}  # measured figures (syncxr.backends); a learned preset's factory sets its own

    def __init__(
        self,
        path: str,
        *,
        batch_size: int,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        dtype: str,
        device: str | None = None,
    ):
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.tokenizer.padding_side = "left"  # generation continues from the right end of each row
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if self.tokenizer.chat_template is None:
            raise ValueError(f"{path}: the tokenizer has no chat template; use an instruction-tuned model")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = model_dtype(dtype, self.device)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype).to(self.device).eval()
        self.batch_size, self.max_new_tokens = batch_size, max_new_tokens
        self.temperature, self.top_p = temperature, top_p
        self.calls = 0

    @torch.no_grad()
    def generate(self, requests: list[ReportRequest]) -> list[str | None]:
        out: list[str | None] = []
        for i in range(0, len(requests), self.batch_size):
            batch = requests[i : i + self.batch_size]
            prompts = [
                self.tokenizer.apply_chat_template(r.messages(), tokenize=False, add_generation_prompt=True)
                for r in batch
            ]
            enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            prompt_len = enc["input_ids"].shape[1]
            # Greedy over per-row Gumbel-perturbed logits: each row samples from its own seed (a retry,
            # with a new seed, samples a new text); temperature 0 stays plain greedy. The section is
            # in the key: FINDINGS and IMPRESSION of one attempt share a seed, not their noise.
            keys = [(r.seed, zlib.crc32(r.section.encode())) for r in batch]
            sampler = [PerRowGumbelSampler(keys, self.temperature, self.top_p, prompt_len)] if self.temperature else []
            gen = self.model.generate(
                **enc,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                logits_processor=LogitsProcessorList(sampler),
                pad_token_id=self.tokenizer.pad_token_id,
            )
            out.extend(self.tokenizer.batch_decode(gen[:, prompt_len:], skip_special_tokens=True))
            self.calls += len(batch)
        return out

    def counters(self) -> dict:
        return {"llm_calls": self.calls}
