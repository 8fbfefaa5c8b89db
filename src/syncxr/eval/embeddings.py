"""Image features of a benchmark split, computed once per (checkpoint, split, transform) and cached.

Three kinds of features are cached:

- `global`: the joint-space embedding `model.encode_image` (zero-shot classification, retrieval);
- `backbone`: the pooled image-encoder feature before the projection head (linear probes);
- `local`: the final convolutional layer's map (ResNet layer4) with the global image projection
  applied at every location, normalised (zero-shot grounding by local features).

A cache entry is keyed by the weights' content hash, the kind, the split file (its path, content
and the images it lists) and the transform, so re-scoring with new prompts or thresholds never
re-encodes an image, and any change to what is encoded gives a new key.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..data.benchmark_split import Split
from ..data.durable import atomic_path
from ..models.protocols import VisionLanguageModel

log = logging.getLogger(__name__)

KINDS = ("global", "backbone", "local")


class SplitImages(Dataset):
    """Transformed images of a split. With `skip_bad`, an image that fails to load is replaced by
    zeros and flagged (ok = False) instead of failing the run; the error names file and row."""

    def __init__(self, split: Split, transform, skip_bad: bool = False):
        self.split, self.transform, self.skip_bad = split, transform, skip_bad

    def __len__(self):
        return len(self.split)

    def __getitem__(self, i):
        try:
            return self.transform(self.split.load(i)), True
        except (FileNotFoundError, ValueError) as e:
            if not self.skip_bad:
                raise
            log.warning("%s; left out (on_error=skip)", e)  # names the split file, the row and the image
            return torch.zeros(1, self.transform.size, self.transform.size), False


def transform_key(transform) -> str:
    state = {k: v for k, v in sorted(vars(transform).items()) if isinstance(v, (int, float, str, bool, tuple, list))}
    return f"{type(transform).__module__}.{type(transform).__qualname__}{json.dumps(state, sort_keys=True)}"


def split_key(split: Split) -> str:
    """Hash of what a split encodes: the split file (path and content) and its image list."""
    h = hashlib.sha256()
    h.update(str(Path(split.source).resolve()).encode())
    if Path(split.source).is_file():
        h.update(Path(split.source).read_bytes())
    for p in split.paths:
        h.update(str(p).encode() + b"\0")
    return h.hexdigest()[:16]


def local_features(model: VisionLanguageModel, images: torch.Tensor) -> torch.Tensor:
    """B x h x w x D, L2-normalised: the final convolutional layer's map projected per location into
    the joint space. A LocalMapModel says how (its `final_conv_map`: GLoRIA resizes to its input size
    first); otherwise the last stage of the ResNet tower through the model's `local_projection`
    (ConVIRT's image projection head, applied to each spatial feature vector)."""
    if model.has_local_maps:
        return F.normalize(model.final_conv_map(images), dim=-1)
    encoder = model.image_encoder
    if not encoder.has_resnet_stages:
        raise ValueError(
            f"{type(encoder).__name__} has no ResNet stage maps: local-feature grounding needs "
            "a ResNet image encoder, or a model with local maps of its own (has_local_maps)"
        )
    _, last = encoder.forward_maps(images)
    feats = last.permute(0, 2, 3, 1)
    proj = model.local_projection
    if proj is not None:
        feats = proj(feats)
    return F.normalize(feats, dim=-1)


def _encode_batch(model: VisionLanguageModel, x: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "global":
        return model.encode_image(x)
    if kind == "backbone":
        return model.image_encoder(x)
    if kind == "local":
        return local_features(model, x)
    raise ValueError(f"unknown feature kind {kind!r}; expected one of {KINDS}")


@torch.no_grad()
def encode_split(
    model: VisionLanguageModel,
    split: Split,
    transform,
    kind: str,
    accelerator,
    batch_size: int = 64,
    skip_bad: bool = False,
    num_workers: int = 0,
):
    """(features N x ..., ok: bool array N) of a split; not cached."""
    loader = DataLoader(SplitImages(split, transform, skip_bad), batch_size=batch_size, num_workers=num_workers)
    model.eval()
    out, oks = [], []
    for x, ok in tqdm(
        loader,
        desc=f"encode {kind} {Path(split.source).name}",
        disable=not accelerator.is_local_main_process,
        leave=False,
    ):
        with accelerator.autocast():
            out.append(_encode_batch(model, x.to(accelerator.device), kind).float().cpu())
        oks.append(ok)
    if not out:
        return torch.zeros(0), np.zeros(0, dtype=bool)
    return torch.cat(out), torch.cat(oks).numpy().astype(bool)


class EmbeddingCache:
    """Feature files under `directory`, keyed by model fingerprint, kind, split and transform.
    `directory=None` disables caching (every call encodes)."""

    def __init__(self, directory: str | Path | None, model_key: str):
        self.directory = None if directory is None else Path(directory)
        self.model_key = model_key
        self.hits = self.misses = 0

    def key(self, kind: str, split: Split, transform, skip_bad: bool) -> str:
        blob = json.dumps([self.model_key, kind, split_key(split), transform_key(transform), skip_bad])
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    def features(
        self,
        model: VisionLanguageModel,
        split: Split,
        transform,
        kind: str,
        accelerator,
        batch_size: int = 64,
        skip_bad: bool = False,
        num_workers: int = 0,
    ):
        """Cached `encode_split`: (features, ok)."""
        if self.directory is None:
            self.misses += 1
            return encode_split(model, split, transform, kind, accelerator, batch_size, skip_bad, num_workers)
        path = self.directory / f"{kind}-{self.key(kind, split, transform, skip_bad)}.safetensors"
        cached = _read_features(path, len(split))
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        feats, ok = encode_split(model, split, transform, kind, accelerator, batch_size, skip_bad, num_workers)
        self.directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save_file(
                {"features": feats.contiguous(), "ok": torch.from_numpy(ok)},
                str(tmp),
                metadata={"source": str(split.source)},
            )
        return feats, ok


def _read_features(path: Path, n: int):
    """(features, ok) of a cache file, or None when it is missing, torn or not a feature file (it is
    then encoded again). Safetensors only: a cache file is never unpickled."""
    if not path.is_file():
        return None
    try:
        blob = load_file(str(path))
        feats, ok = blob["features"], blob["ok"].numpy().astype(bool)
    except (OSError, SafetensorError, KeyError) as e:
        log.warning("embedding cache %s unreadable (%s): encoding again", path, e)
        return None
    if len(feats) != n or len(ok) != n:
        log.warning("embedding cache %s holds %d rows, the split %d: encoding again", path, len(feats), n)
        return None
    return feats, ok
