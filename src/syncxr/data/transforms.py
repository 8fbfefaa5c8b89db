"""Image transforms for pre-training and evaluation (grayscale uint8 tensors in, normalised floats out)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torchvision.transforms.v2 import functional as F

# Phantom and CXR intensities are centred near mid-grey; a fixed normalisation keeps it simple.
MEAN, STD = 0.5, 0.25


class TrainAugment:
    """Random resized crop and brightness/contrast jitter, drawn from the caller's numpy rng.

    Taking the rng as an argument (instead of torch's global RNG) makes each sample's augmentation
    a function of its own seed: the same with any number of workers and after a resume.
    No horizontal flip: reports name left and right.
    """

    def __init__(self, size: int, crop_scale: float = 0.8, jitter: float = 0.2):
        if not 0.0 < crop_scale <= 1.0:
            raise ValueError(f"crop_scale must be in (0, 1], got {crop_scale}")
        self.size, self.crop_scale, self.jitter = size, crop_scale, jitter

    def __call__(self, img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        h, w = img.shape[-2:]
        area = h * w * rng.uniform(self.crop_scale, 1.0)
        ratio = math.exp(rng.uniform(math.log(0.9), math.log(1.1)))
        ch, cw = min(h, round(math.sqrt(area / ratio))), min(w, round(math.sqrt(area * ratio)))
        top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        x = F.resized_crop(img, top, left, ch, cw, [self.size, self.size], antialias=True).to(torch.float32)
        # Brightness, contrast (towards the image mean, as torchvision's adjust_contrast on one channel)
        # and normalisation in a few in-place ops: per-op overhead dominates at these image sizes.
        b = float(rng.uniform(1 - self.jitter, 1 + self.jitter)) if self.jitter else 1.0
        c = float(rng.uniform(1 - self.jitter, 1 + self.jitter)) if self.jitter else 1.0
        x = x.mul_(b / 255.0).clamp_(0.0, 1.0)
        if c != 1.0:
            m = x.mean()
            x = x.sub_(m).mul_(c).add_(m).clamp_(0.0, 1.0)
        return x.sub_(MEAN).div_(STD)


class EvalTransform:
    """Resize to a square and normalise."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        x = F.resize(img, [self.size, self.size], antialias=True)
        return F.normalize(F.to_dtype(x, torch.float32, scale=True), [MEAN], [STD])


def train_transform(size: int, crop_scale: float = 0.8, jitter: float = 0.2) -> TrainAugment:
    return TrainAugment(size, crop_scale, jitter)


def eval_transform(size: int) -> EvalTransform:
    return EvalTransform(size)
