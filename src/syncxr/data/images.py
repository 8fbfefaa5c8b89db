"""Reading images from disk into tensors, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError


def load_gray(path: str | Path) -> torch.Tensor:
    """uint8 tensor 1xHxW. 16-bit images are scaled to 8 bit; any failure names the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} not found")
    try:
        with Image.open(path) as im:
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = (np.asarray(im, dtype=np.uint32) >> 8).clip(0, 255).astype(np.uint8)
            else:
                arr = np.asarray(im.convert("L"))
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ValueError(f"image {path} could not be decoded: {e}") from e
    return torch.from_numpy(arr.copy()).unsqueeze(0)
