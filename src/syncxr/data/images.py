"""Reading images from disk, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")


def open_gray(path: str | Path) -> Image.Image:
    """The decoded image as an 8-bit grayscale PIL image ("L"). 16-bit images are scaled to 8 bit
    (the low byte dropped); any failure names the file.

    A PIL image rather than a tensor: the pre-training loader crops and resizes it in one call
    (`TrainAugment.sample`) without making a full-size array first."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} not found")
    try:
        im = Image.open(path)
        try:
            im.load()  # decoded here, inside the try, so that a corrupt file names itself
        except BaseException:
            im.close()
            raise
        if im.mode in SIXTEEN_BIT_MODES:
            arr = (np.asarray(im, dtype=np.uint32) >> 8).clip(0, 255).astype(np.uint8)
            return Image.fromarray(arr)
        # load() has closed a single-frame file; the pixels stay (no copy of a full-size image).
        return im if im.mode == "L" else im.convert("L")
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ValueError(f"image {path} could not be decoded: {e}") from e


def load_gray(path: str | Path) -> torch.Tensor:
    """uint8 tensor 1xHxW. 16-bit images are scaled to 8 bit; any failure names the file."""
    return torch.from_numpy(np.array(open_gray(path))).unsqueeze(0)
