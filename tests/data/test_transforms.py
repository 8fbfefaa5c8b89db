import math

import numpy as np
import torch
from torchvision.transforms.v2 import functional as F

from syncxr.data.transforms import EvalTransform, TrainAugment


def test_fused_augmentation_equals_torchvisions_ops():
    img = torch.randint(0, 256, (1, 128, 128), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    got = TrainAugment(96, 0.8, 0.2)(img, np.random.default_rng(1))
    rng = np.random.default_rng(1)  # the same draws, in the same order
    area = 128 * 128 * rng.uniform(0.8, 1.0)
    ratio = math.exp(rng.uniform(math.log(0.9), math.log(1.1)))
    ch, cw = min(128, round(math.sqrt(area / ratio))), min(128, round(math.sqrt(area * ratio)))
    top, left = int(rng.integers(0, 128 - ch + 1)), int(rng.integers(0, 128 - cw + 1))
    x = F.to_dtype(F.resized_crop(img, top, left, ch, cw, [96, 96], antialias=True), torch.float32, scale=True)
    x = F.adjust_contrast(F.adjust_brightness(x, float(rng.uniform(0.8, 1.2))), float(rng.uniform(0.8, 1.2)))
    assert torch.allclose(got, F.normalize(x, [0.5], [0.25]), atol=1e-5)


def test_eval_transform_is_deterministic_and_normalised():
    img = torch.full((1, 64, 64), 128, dtype=torch.uint8)
    out = EvalTransform(32)(img)
    assert out.shape == (1, 32, 32) and torch.allclose(out, torch.full_like(out, (128 / 255 - 0.5) / 0.25), atol=1e-6)
