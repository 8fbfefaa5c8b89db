"""ConVIRT (Zhang et al., 2020): image and text towers, projection heads, bidirectional InfoNCE.

Trained by W processes (DDP), the loss sees the negatives of every rank: each rank scores the whole
W*b batch, as one process at batch W*b does (syncxr.launch.data_parallel).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..launch.data_parallel import gather_rows
from .protocols import ImageEncoder, TextEncoder


def convirt_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, tau: float = 0.1, lam: float = 0.75) -> torch.Tensor:
    """λ·(image→text InfoNCE) + (1−λ)·(text→image InfoNCE) on L2-normalised embeddings."""
    image_emb = F.normalize(image_emb, dim=-1)
    text_emb = F.normalize(text_emb, dim=-1)
    logits = image_emb @ text_emb.t() / tau
    target = torch.arange(len(logits), device=logits.device)
    return lam * F.cross_entropy(logits, target) + (1 - lam) * F.cross_entropy(logits.t(), target)


def projection_head(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Module:
    """ConVIRT's non-linear projection: Linear-ReLU-Linear."""
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim))


class ConVIRT(nn.Module):
    """A VisionLanguageModel (models/protocols.py) with no local maps of its own."""

    has_local_maps = False

    def __init__(
        self,
        image_encoder: ImageEncoder,
        text_encoder: TextEncoder,
        *,
        proj_dim: int,
        proj_hidden: int | None,
        tau: float,
        lam: float,
    ):
        super().__init__()
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"ConVIRT lam must be in [0, 1], got {lam}")
        if tau <= 0:
            raise ValueError(f"ConVIRT tau must be > 0, got {tau}")
        self.image_encoder, self.text_encoder = image_encoder, text_encoder
        # proj_hidden null: each head as wide as its tower's feature (ConVIRT-pytorch: 2048 and 768).
        self.image_proj = projection_head(image_encoder.dim, proj_hidden or image_encoder.dim, proj_dim)
        self.text_proj = projection_head(text_encoder.dim, proj_hidden or text_encoder.dim, proj_dim)
        self.tau, self.lam = tau, lam

    @property
    def local_projection(self) -> nn.Module:
        return self.image_proj  # the global projection head, applied per location

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_proj(self.image_encoder(images)), dim=-1)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_proj(self.text_encoder(input_ids, attention_mask)), dim=-1)

    def forward(self, images, input_ids, attention_mask) -> dict[str, torch.Tensor]:
        img = self.encode_image(images).float()
        txt = self.encode_text(input_ids, attention_mask).float()
        if self.training:  # the batches of all ranks (identity in one process); every rank trains
            img, txt = gather_rows(img), gather_rows(txt)
        return {"loss": convirt_loss(img, txt, self.tau, self.lam)}
