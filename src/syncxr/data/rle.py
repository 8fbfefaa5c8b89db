"""Run-length encoded masks as published by the SIIM-ACR Pneumothorax challenge (Kaggle).

Pixels are numbered in column-major order (down the first column, then the next: the mask is
transposed relative to the image array), and a mask is "start length start length ...":

- `relative` (the stage-1 `train-rle.csv` and the challenge's `mask_functions.py`): each start is
  counted from the end of the previous run, the first from pixel 0 (0-based);
- `absolute` (the convention of most other Kaggle segmentation challenges, also used by the
  re-released stage-2 files): each start is a 1-based pixel number.

`-1` (or an empty cell) is a negative image. Several rows for one image are several masks of it;
`decode_rles` unites them.
"""

from __future__ import annotations

import numpy as np

from ..config_choices import RLE_MODES

NEGATIVE = "-1"


def _check_mode(mode: str) -> None:
    if mode not in RLE_MODES:
        raise ValueError(f"unknown RLE mode {mode!r}; expected one of {RLE_MODES}")


def rle_encode(mask: np.ndarray, mode: str = "relative") -> str:
    """Encodes a boolean HxW mask; an empty mask gives `-1`."""
    _check_mode(mode)
    flat = np.asarray(mask, dtype=bool).T.reshape(-1)  # column-major
    if not flat.any():
        return NEGATIVE
    padded = np.concatenate([[False], flat, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    starts, ends = edges[0::2], edges[1::2]  # 0-based start, exclusive end
    lengths = ends - starts
    if mode == "absolute":
        firsts = starts + 1
    else:
        firsts = starts - np.concatenate([[0], ends[:-1]])
    return " ".join(f"{s} {n}" for s, n in zip(firsts, lengths))


def rle_decode(rle: str, shape: tuple[int, int], mode: str = "relative") -> np.ndarray:
    """Boolean mask of `shape` (H, W) from one RLE string; `-1` or empty gives an empty mask."""
    _check_mode(mode)
    h, w = int(shape[0]), int(shape[1])
    flat = np.zeros(h * w, dtype=bool)
    text = "" if rle is None else str(rle).strip()
    if text in ("", NEGATIVE, "nan"):
        return flat.reshape(w, h).T
    try:
        values = np.array([int(v) for v in text.split()], dtype=np.int64)
    except ValueError as e:
        raise ValueError(f"RLE is not a list of integers: {text[:60]!r}") from e
    if len(values) % 2:
        raise ValueError(f"RLE has an odd number of values ({len(values)}): {text[:60]!r}")
    pos = 0
    for start, length in zip(values[0::2], values[1::2]):
        if length < 0 or start < (1 if mode == "absolute" else 0):
            raise ValueError(f"RLE has a negative length or start: {start} {length}")
        begin = start - 1 if mode == "absolute" else pos + start
        end = begin + length
        if end > h * w:
            raise ValueError(f"RLE run {start} {length} ends at pixel {end}, past the {h}x{w} image")
        flat[begin:end] = True
        pos = end
    return flat.reshape(w, h).T


def decode_rles(rles, shape: tuple[int, int], mode: str = "relative") -> np.ndarray:
    """Union of several RLE masks of one image."""
    out = np.zeros(shape, dtype=bool)
    for r in rles:
        out |= rle_decode(r, shape, mode)
    return out
