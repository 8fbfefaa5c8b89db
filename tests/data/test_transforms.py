import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as F

from syncxr.data.transforms import MEAN, STD, EvalTransform, TrainAugment, jitter_normalise


def ramp(h: int, w: int, axis: int) -> Image.Image:
    """An image whose pixel values are their column (axis=1) or row (axis=0) index."""
    return Image.fromarray(np.indices((h, w))[axis].astype(np.uint8))


def fitted_span(profile: np.ndarray, size: int) -> tuple[float, float]:
    """(start, length) in source pixels of the crop whose resized ramp is `profile`: output pixel j
    samples the source at start + (j + 0.5) * length / size - 0.5, so the ramp stays a line there.
    Fitted on the interior (a crop at the image's edge sees the clamped border in its outer pixels)."""
    j = np.arange(2, size - 2)
    slope, intercept = np.polyfit(j, profile[2 : size - 2], 1)
    length = slope * size
    return intercept + 0.5 - 0.5 * slope, length


def test_crop_boxes_cover_the_configured_area_and_aspect_ranges():
    """Read each crop's box back from the pixels of a coordinate ramp, not from the code's draws.
    (Square: on an oblong image a side cut to the image's edge takes the ratio out of range.)"""
    h, w, size, aug = 220, 220, 40, TrainAugment(40, crop_scale=0.8, jitter=0.0)
    areas, ratios, lefts, tops = [], [], [], []
    for seed in range(60):
        cols, _ = aug.sample(ramp(h, w, 1), np.random.default_rng(seed))
        rows, _ = aug.sample(ramp(h, w, 0), np.random.default_rng(seed))  # the same draws
        left, cw = fitted_span(cols[0].double().mean(0).numpy(), size)
        top, ch = fitted_span(rows[0].double().mean(1).numpy(), size)
        assert -1 <= left and left + cw <= w + 1 and -1 <= top and top + ch <= h + 1  # inside the image
        areas.append(cw * ch / (h * w))
        ratios.append(cw / ch)
        lefts.append(left)
        tops.append(top)
    areas, ratios = np.array(areas), np.array(ratios)
    # Rounding the ramp to uint8 costs about a pixel of the fitted spans: ~1.5 % of area, ~1 % of ratio.
    assert areas.min() > 0.8 - 0.02 and areas.max() < 1.0 + 0.02, areas
    assert ratios.min() > 0.9 - 0.015 and ratios.max() < 1.1 + 0.015, ratios
    # The draws span the ranges rather than sitting at one value.
    assert areas.min() < 0.85 and areas.max() > 0.95 and ratios.min() < 0.95 and ratios.max() > 1.05
    assert np.ptp(lefts) > 10 and np.ptp(tops) > 5


def test_crop_is_torchvisions_antialiased_resized_crop_inside_the_box():
    img = np.random.default_rng(0).integers(0, 256, (120, 100), dtype=np.uint8)
    aug = TrainAugment(48, 0.6, 0.0)
    got, _ = aug.sample(Image.fromarray(img), np.random.default_rng(3))
    (top, left, ch, cw), _ = aug.draw(120, 100, np.random.default_rng(3))
    ref = F.resized_crop(torch.from_numpy(img)[None], top, left, ch, cw, [48, 48], antialias=True)
    # PIL's box resize reads the pixels just outside the box where torchvision clamps at its edge:
    # the two agree away from the border.
    diff = (got.int() - ref.int()).abs()[0, 2:-2, 2:-2]
    assert got.dtype == torch.uint8 and got.shape == (1, 48, 48) and int(diff.max()) <= 1


def test_device_jitter_is_torchvisions_brightness_contrast_and_normalise():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (5, 1, 24, 24), dtype=torch.uint8, generator=g)
    factors = 0.7 + 0.6 * torch.rand(5, 2, generator=g)
    got = jitter_normalise(images, factors)
    for k in range(5):
        x = F.to_dtype(images[k], torch.float32, scale=True)
        x = F.adjust_contrast(F.adjust_brightness(x, float(factors[k, 0])), float(factors[k, 1]))
        assert torch.allclose(got[k], F.normalize(x, [MEAN], [STD]), atol=1e-5), k
    with pytest.raises(TypeError, match="uint8"):
        jitter_normalise(images.float(), factors)


def test_one_image_augmentation_is_fixed_by_its_rng():
    img = torch.randint(0, 256, (1, 64, 80), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    aug = TrainAugment(32, 0.8, 0.2)
    a, b = aug(img, np.random.default_rng(5)), aug(img, np.random.default_rng(5))
    assert a.dtype == torch.float32 and a.shape == (1, 32, 32) and torch.equal(a, b)
    assert not torch.equal(a, aug(img, np.random.default_rng(6)))


def test_eval_transform_is_deterministic_and_normalised():
    img = torch.full((1, 64, 64), 128, dtype=torch.uint8)
    out = EvalTransform(32)(img)
    assert out.shape == (1, 32, 32) and torch.allclose(out, torch.full_like(out, (128 / 255 - 0.5) / 0.25), atol=1e-6)
