"""A model from its three config sections (`model`, `image_encoder`, `text_encoder`)."""

from __future__ import annotations

from torch import nn

from ..config import build


def build_model(model_cfg, image_cfg, text_cfg) -> nn.Module:
    """Image tower, then text tower, then the model around them (this order fixes which random
    numbers initialise what, so a seed gives the same weights every time)."""
    image = build(image_cfg, "image_encoder")
    text = build(text_cfg, "text_encoder")
    return build(model_cfg, "model", image_encoder=image, text_encoder=text)
