"""The phantom real corpus the learned backends train on: the very dataset data=real trains on
(`real_corpus` in train.py's config), read from the cache or built there on first use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..data.dataset_format import MANIFEST
from ..phantom.corpus import PhantomCorpusSpec, ensure_phantom_corpus


def corpus_spec(corpus: dict) -> PhantomCorpusSpec:
    """The PhantomCorpusSpec of a `dataset/phantom_real.yaml` section (the learned backends train on
    the phantom real corpus only: a synthetic or non-phantom corpus is refused)."""
    spec = {k: v for k, v in corpus.items() if k != "builder"}
    if corpus.get("builder", "phantom") != "phantom" or spec.get("kind", "real") != "real":
        raise ValueError(
            f"corpus: the learned phantom backends train on the phantom real corpus "
            f"(builder=phantom, kind=real), got builder={corpus.get('builder')!r}, kind={spec.get('kind')!r}"
        )
    try:
        return PhantomCorpusSpec(**{**spec, "kind": "real"})
    except TypeError as e:
        raise ValueError(f"corpus: {e} (allowed: {sorted(PhantomCorpusSpec.__dataclass_fields__)})") from e


def corpus_rows(corpus: dict, cache_dir: str | Path, split: str) -> tuple[Path, pd.DataFrame]:
    """(dataset directory, manifest rows of `split`: train | val) of the phantom real corpus."""
    root = ensure_phantom_corpus(corpus_spec(corpus), Path(cache_dir).expanduser().resolve())
    df = pd.read_parquet(root / MANIFEST)
    return root, df[df["split"] == split].reset_index(drop=True)


def load_gray(root: Path, rows: pd.DataFrame, size: int) -> np.ndarray:
    """The rows' images as float32 N x size x size in [0, 1] (area-resized)."""
    out = np.empty((len(rows), size, size), dtype=np.float32)
    for i, rel in enumerate(rows["image"]):
        with Image.open(root / rel) as im:
            out[i] = np.asarray(im.convert("L").resize((size, size), Image.BOX), dtype=np.float32) / 255.0
    return out
