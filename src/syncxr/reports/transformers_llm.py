"""An instruction LLM through `transformers`: chat template, left-padded batched generation."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from .requests import ReportRequest


class TransformersLLM:
    name = "transformers"

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
        torch_dtype = getattr(torch, dtype) if dtype != "auto" else "auto"
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
            torch.manual_seed(batch[0].seed)  # a retry (new seed) samples a new text
            gen = self.model.generate(
                **enc,
                max_new_tokens=self.max_new_tokens,
                do_sample=self.temperature > 0,
                temperature=self.temperature or None,
                top_p=self.top_p,
                pad_token_id=self.tokenizer.pad_token_id,
            )
            new = gen[:, enc["input_ids"].shape[1] :]
            out.extend(self.tokenizer.batch_decode(new, skip_special_tokens=True))
            self.calls += len(batch)
        return out

    def counters(self) -> dict:
        return {"llm_calls": self.calls}
