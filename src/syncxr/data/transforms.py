"""Image transforms for pre-training and evaluation.

Pre-training splits its augmentation in two, so that images stay uint8 until the device: the loader
draws each sample's random resized crop and jitter factors and crops (`TrainAugment.sample`, uint8
out: a quarter of float32's bytes through the worker queues and onto the GPU); the device applies
brightness/contrast jitter and normalisation to the whole batch at once (`jitter_normalise`), where
it costs next to nothing. Evaluation resizes and normalises per image (`EvalTransform`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as F

# Phantom and CXR intensities are centred near mid-grey; a fixed normalisation keeps it simple.
MEAN, STD = 0.5, 0.25
# How pixel values in [0, 1] are mapped before the image encoder, by name: (x - mean) / std.
# standard: the framework's own (above); unit: left in [0, 1] (SynCXR paper A.2, "as per Huang et al.");
# half: [-1, 1] (GLoRIA's released code, `transforms.norm: half`). Pre-training (`loader.normalize`) and
# every evaluation of the run use the same one.
PIXEL_NORMS = {"standard": (MEAN, STD), "unit": (0.0, 1.0), "half": (0.5, 0.5)}
_LOG_RATIO = (math.log(0.9), math.log(1.1))  # aspect ratios of the random crops, uniform in log


def pixel_norm(name: str) -> tuple[float, float]:
    """(mean, std) of a PIXEL_NORMS entry; an unknown name is refused, naming the choices."""
    if name not in PIXEL_NORMS:
        raise ValueError(f"loader.normalize must be one of {sorted(PIXEL_NORMS)}, got {name!r}")
    return PIXEL_NORMS[name]


def jitter_normalise(images: torch.Tensor, factors: torch.Tensor, normalize: str = "standard") -> torch.Tensor:
    """uint8 images B x 1 x H x W and per-image (brightness, contrast) factors B x 2 -> normalised
    float32: brightness scales, contrast moves each image towards its own mean (torchvision's
    adjust_brightness and adjust_contrast on one channel, each clamped to [0, 1]), then
    (x - mean) / std of the PIXEL_NORMS entry `normalize`. Batched, on whatever device the images are."""
    mean, std = pixel_norm(normalize)
    if images.dtype != torch.uint8:
        raise TypeError(f"jitter_normalise takes uint8 images, got {images.dtype}")
    b = factors[:, 0].to(torch.float32).view(-1, 1, 1, 1)
    c = factors[:, 1].to(torch.float32).view(-1, 1, 1, 1)
    x = images.to(torch.float32).mul_(b / 255.0).clamp_(0.0, 1.0)
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    x = x.sub_(m).mul_(c).add_(m).clamp_(0.0, 1.0)
    return x.sub_(mean).div_(std)


class TrainAugment:
    """Random resized crop and brightness/contrast jitter, drawn from the caller's numpy rng.

    Taking the rng as an argument (instead of torch's global RNG) makes each sample's augmentation
    a function of its own seed: the same with any number of workers and after a resume.
    No horizontal flip: reports name left and right.
    """

    draws_randomly = True  # called with a numpy Generator: (image, rng)

    def __init__(self, size: int, crop_scale: float = 0.8, jitter: float = 0.2, normalize: str = "standard"):
        if not 0.0 < crop_scale <= 1.0:
            raise ValueError(f"crop_scale must be in (0, 1], got {crop_scale}")
        pixel_norm(normalize)
        self.size, self.crop_scale, self.jitter, self.normalize = size, crop_scale, jitter, normalize

    def draw(self, h: int, w: int, rng: np.random.Generator) -> tuple[tuple[int, int, int, int], tuple[float, float]]:
        """(crop box (top, left, height, width) within an h x w image, factors (brightness, contrast)):
        a crop of a random share in [crop_scale, 1] of the area and aspect ratio in [0.9, 1.1], a
        side longer than the image cut to it (on an oblong image the ratio may then leave the range),
        at a uniformly random position; factors uniform in [1 - jitter, 1 + jitter]."""
        u = rng.random(6)  # one call: per-sample Python overhead counts at thousands of images a second
        area = h * w * (self.crop_scale + (1.0 - self.crop_scale) * u[0])
        ratio = math.exp(_LOG_RATIO[0] + (_LOG_RATIO[1] - _LOG_RATIO[0]) * u[1])
        ch, cw = min(h, round(math.sqrt(area / ratio))), min(w, round(math.sqrt(area * ratio)))
        top, left = int(u[2] * (h - ch + 1)), int(u[3] * (w - cw + 1))
        b, c = (1.0 - self.jitter + 2.0 * self.jitter * float(x) for x in u[4:])
        return (top, left, ch, cw), (b, c)

    def sample(self, image: Image.Image, rng: np.random.Generator) -> tuple[torch.Tensor, tuple[float, float]]:
        """The loader's half: a grayscale PIL image -> (uint8 1 x size x size crop, jitter factors).

        Crop and resize are one PIL call (bilinear with antialiasing; the filter reads the pixels
        just outside the box rather than clamping at its edge), so no full-size array is made."""
        w, h = image.size
        (top, left, ch, cw), factors = self.draw(h, w, rng)
        crop = image.resize((self.size, self.size), Image.Resampling.BILINEAR, box=(left, top, left + cw, top + ch))
        return torch.from_numpy(np.array(crop)).unsqueeze(0), factors

    def __call__(self, img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Both halves on one uint8 1 x H x W tensor -> normalised float 1 x size x size."""
        x, factors = self.sample(Image.fromarray(img[0].numpy()), rng)
        return jitter_normalise(x.unsqueeze(0), torch.tensor([factors]), self.normalize)[0]


class EvalTransform:
    """Resize to a square of side `size` and normalise; with `resize`, resize to that square first
    and take the centre `size` x `size` crop of it (e.g. 256 then 224)."""

    draws_randomly = False  # called with the image alone

    def __init__(self, size: int, resize: int | None = None, normalize: str = "standard"):
        if resize is not None and resize < size:
            raise ValueError(f"a centre crop of {size} px needs a resize of at least {size} px, got {resize}")
        pixel_norm(normalize)
        self.size, self.resize, self.normalize = size, resize, normalize

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if self.resize is None:
            x = F.resize(img, [self.size, self.size], antialias=True)
        else:
            x = F.center_crop(F.resize(img, [self.resize, self.resize], antialias=True), [self.size, self.size])
        mean, std = pixel_norm(self.normalize)
        return F.normalize(F.to_dtype(x, torch.float32, scale=True), [mean], [std])


def train_transform(
    size: int, crop_scale: float = 0.8, jitter: float = 0.2, normalize: str = "standard"
) -> TrainAugment:
    return TrainAugment(size, crop_scale, jitter, normalize)


def eval_transform(size: int, resize: int | None = None, normalize: str = "standard") -> EvalTransform:
    return EvalTransform(size, resize, normalize)
