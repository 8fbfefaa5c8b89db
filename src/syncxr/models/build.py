"""A model from its three config sections (`model`, `image_encoder`, `text_encoder`)."""

from __future__ import annotations

from ..config import build
from .protocols import ImageEncoder, LocalMapModel, TextEncoder, VisionLanguageModel


def satisfied(obj, contract: type, key: str):
    """`obj`, after checking it has every member of the protocol `contract` (naming the config `key`)."""
    if not isinstance(obj, contract):
        raise TypeError(
            f"{key}: {type(obj).__qualname__} is no {contract.__name__}: it lacks a member models/protocols.py lists"
        )
    return obj


def build_model(model_cfg, image_cfg, text_cfg) -> VisionLanguageModel:
    """Image tower, then text tower, then the model around them (this order fixes which random
    numbers initialise what, so a seed gives the same weights every time)."""
    image = satisfied(build(image_cfg, "image_encoder"), ImageEncoder, "image_encoder")
    text = satisfied(build(text_cfg, "text_encoder"), TextEncoder, "text_encoder")
    model = satisfied(build(model_cfg, "model", image_encoder=image, text_encoder=text), VisionLanguageModel, "model")
    return satisfied(model, LocalMapModel, "model") if model.has_local_maps else model
