"""Image transforms for pre-training and evaluation (grayscale uint8 tensors in, normalised floats out)."""

from __future__ import annotations

import torch
from torchvision.transforms import v2

# Phantom and CXR intensities are centred near mid-grey; a fixed normalisation keeps it simple.
MEAN, STD = 0.5, 0.25


def train_transform(size: int, crop_scale: float = 0.8, jitter: float = 0.2) -> v2.Compose:
    """Random crop and intensity jitter. No horizontal flip: reports name left and right."""
    return v2.Compose([
        v2.RandomResizedCrop(size, scale=(crop_scale, 1.0), ratio=(0.9, 1.1), antialias=True),
        v2.ToDtype(torch.float32, scale=True),
        v2.ColorJitter(brightness=jitter, contrast=jitter),
        v2.Normalize([MEAN], [STD]),
    ])


def eval_transform(size: int) -> v2.Compose:
    return v2.Compose([
        v2.Resize((size, size), antialias=True),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize([MEAN], [STD]),
    ])
