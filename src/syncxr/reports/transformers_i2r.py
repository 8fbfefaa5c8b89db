"""An image-to-report MLLM through `transformers` (`AutoModelForImageTextToText` + `AutoProcessor`):
the processor's chat template, left-padded batched generation, and sampling in which each image's
report is a function of its own seed, whatever the batch (syncxr.reports.row_sampling)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor, LogitsProcessorList

from .i2r_prompt import REPORT_PROMPT
from .row_sampling import PerRowGumbelSampler


class TransformersI2R:
    name = "transformers"
    reads_labels = False

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
        prompt: str = REPORT_PROMPT,
    ):
        self.processor = AutoProcessor.from_pretrained(path)
        if getattr(self.processor, "chat_template", None) is None:  # third-party: a transformers processor
            raise ValueError(f"{path}: the processor has no chat template; use an instruction-tuned image-text model")
        tokenizer = self.processor.tokenizer
        tokenizer.padding_side = "left"  # generation continues from the right end of each row
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.pad_token_id = tokenizer.pad_token_id
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = getattr(torch, dtype) if dtype != "auto" else "auto"
        self.model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch_dtype).to(self.device).eval()
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        self.prompt = self.processor.apply_chat_template(messages, add_generation_prompt=True)  # same for every image
        self.batch_size, self.max_new_tokens = batch_size, max_new_tokens
        self.temperature, self.top_p = temperature, top_p
        self.calls = 0

    @torch.no_grad()
    def describe(self, images: list[np.ndarray], seeds: list[int]) -> list[str | None]:
        if len(images) != len(seeds):
            raise ValueError(f"transformers i2r: {len(images)} images but {len(seeds)} seeds")
        out: list[str | None] = []
        for i in range(0, len(images), self.batch_size):
            batch = [Image.fromarray(im).convert("RGB") for im in images[i : i + self.batch_size]]
            enc = self.processor(images=batch, text=[self.prompt] * len(batch), return_tensors="pt", padding=True)
            enc = enc.to(self.device, dtype=self.model.dtype)  # casts pixel values only, not token ids
            prompt_len = enc["input_ids"].shape[1]
            # Greedy over per-row Gumbel-perturbed logits, as TransformersLLM: each image samples from
            # its own seed (a retry, with new seeds, samples new reports); temperature 0 stays greedy.
            keys = [(int(s),) for s in seeds[i : i + self.batch_size]]
            sampler = [PerRowGumbelSampler(keys, self.temperature, self.top_p, prompt_len)] if self.temperature else []
            gen = self.model.generate(
                **enc,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                logits_processor=LogitsProcessorList(sampler),
                pad_token_id=self.pad_token_id,
            )
            out.extend(self.processor.batch_decode(gen[:, prompt_len:], skip_special_tokens=True))
            self.calls += len(batch)
        return out

    def counters(self) -> dict:
        return {"i2r_calls": self.calls}
