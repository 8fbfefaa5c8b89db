"""A BERT-family text tower loaded with `transformers.AutoModel.from_pretrained`."""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer

from ..config_choices import POOLS


def load_tokenizer(path: str):
    return AutoTokenizer.from_pretrained(path)


class TextEncoder(nn.Module):
    """Pooled sentence feature over the last hidden states, padding masked out; carries the
    tokenizer of its checkpoint and the number of tokens it reads (`max_length`).

    ConVIRT max-pools over tokens. `freeze_layers` freezes the embeddings and the first N layers
    (the ConVIRT paper froze 6 of BERT's 12); 0 trains the whole tower.
    """

    def __init__(self, path: str, pool: str, freeze_layers: int, max_length: int):
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"unknown text pooling {pool!r}; expected one of {POOLS}")
        if max_length < 2:
            raise ValueError(f"text max_length must be >= 2 (two special tokens), got {max_length}")
        self.model = AutoModel.from_pretrained(path)
        self.tokenizer = load_tokenizer(path)
        self.max_length = max_length
        self.dim = self.model.config.hidden_size
        self.pool = pool
        if freeze_layers > 0:
            self.model.embeddings.requires_grad_(False)
            for layer in self.model.encoder.layer[:freeze_layers]:
                layer.requires_grad_(False)

    def token_states(self, input_ids, attention_mask, output_hidden_states: bool = False):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=output_hidden_states)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.token_states(input_ids, attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(h.dtype)
        if self.pool == "cls":
            return h[:, 0]
        if self.pool == "mean":
            return (h * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return h.masked_fill(mask == 0, torch.finfo(h.dtype).min).amax(1)
