"""The fine-tuning augmentation of the knowledge-enhanced MedVLP line (MedKLIP, KAD = Zhang et al. 2023,
MAVL), which SynCXR's Appendix A.2 says it applies to fine-tuned classification.

What their public fine-tuning code does to a training image (MAVL `Finetuning/classification/dataset/
dataset.py`, the same pipeline as KAD's `A3_CLIP/dataset/dataset.py`): a random resized crop of 20-100 %
of the area (bicubic), a horizontal flip with probability 0.5, then RandAugment as ALBEF writes it:
2 operations drawn (with replacement) from Identity, AutoContrast, Equalize, Brightness, Sharpness,
ShearX, ShearY, TranslateX, TranslateY and Rotate, each applied with probability 0.5 at magnitude 7
of 10 (enhance factor 0.1 + 1.8 * 0.7, shear 0.3 * 0.7, translation 10 * 0.7 px, rotation 30 * 0.7
degrees; geometric ones in a random direction, grey fill). Written here on torchvision's functional
ops with the caller's numpy rng (the same draw whatever the worker count); the pixels are then
normalised as the rest of the framework does (`transforms.MEAN`, `transforms.STD`). Differences
from the reference: shears and rotations turn about the image centre (torchvision) rather than the
corner (OpenCV), and the image stays one channel.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from .transforms import pixel_norm

OPS = ("Identity", "AutoContrast", "Equalize", "Brightness", "Sharpness", "ShearX", "ShearY")
OPS += ("TranslateX", "TranslateY", "Rotate")
MAX_LEVEL = 10.0
FILL = 128  # grey, as the reference fills what a geometric op uncovers


class RandAugmentCrop:
    """Random resized crop + horizontal flip + RandAugment(n_ops, magnitude), then normalisation;
    called with (uint8 1 x H x W image, numpy Generator) like `TrainAugment`."""

    draws_randomly = True

    def __init__(
        self, size: int, crop_scale: float = 0.2, n_ops: int = 2, magnitude: float = 7.0, normalize: str = "standard"
    ):
        if not 0.0 < crop_scale <= 1.0:
            raise ValueError(f"crop_scale must be in (0, 1], got {crop_scale}")
        if not 0.0 <= magnitude <= MAX_LEVEL:
            raise ValueError(f"RandAugment magnitude must be in [0, {MAX_LEVEL:g}], got {magnitude}")
        pixel_norm(normalize)
        self.size, self.crop_scale, self.n_ops, self.magnitude = size, crop_scale, n_ops, magnitude
        self.normalize = normalize  # the pixel range the encoder was pre-trained with (PIXEL_NORMS)

    def crop_box(self, h: int, w: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
        """(top, left, height, width) as torchvision's RandomResizedCrop draws it (ratio 3/4-4/3, ten
        tries, then the whole image)."""
        for _ in range(10):
            area = h * w * rng.uniform(self.crop_scale, 1.0)
            ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
            cw, ch = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
            if 0 < cw <= w and 0 < ch <= h:
                return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
        return 0, 0, h, w

    def apply_op(self, name: str, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        level = self.magnitude / MAX_LEVEL
        sign = 1.0 if rng.random() < 0.5 else -1.0
        if name == "AutoContrast":
            return F.autocontrast(x)
        if name == "Equalize":
            return F.equalize(x)
        if name in ("Brightness", "Sharpness"):
            factor = 0.1 + 1.8 * level
            return F.adjust_brightness(x, factor) if name == "Brightness" else F.adjust_sharpness(x, factor)
        angle, shear, shift = 0.0, [0.0, 0.0], [0, 0]
        if name.startswith("Shear"):
            shear[name == "ShearY"] = sign * math.degrees(math.atan(0.3 * level))
        elif name.startswith("Translate"):
            shift[name == "TranslateY"] = int(round(sign * 10 * level))
        elif name == "Rotate":
            angle = sign * 30 * level
        else:  # Identity
            return x
        return F.affine(x, angle=angle, translate=shift, scale=1.0, shear=shear, fill=FILL)

    def __call__(self, img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        if img.dtype != torch.uint8:
            raise TypeError(f"RandAugmentCrop takes uint8 images, got {img.dtype}")
        top, left, ch, cw = self.crop_box(img.shape[-2], img.shape[-1], rng)
        x = F.resized_crop(img, top, left, ch, cw, [self.size, self.size], InterpolationMode.BICUBIC, antialias=True)
        if rng.random() < 0.5:
            x = F.horizontal_flip(x)
        for name in rng.choice(OPS, self.n_ops):
            if rng.random() < 0.5:
                x = self.apply_op(str(name), x, rng)
        mean, std = pixel_norm(self.normalize)
        return F.normalize(F.to_dtype(x, torch.float32, scale=True), [mean], [std])
