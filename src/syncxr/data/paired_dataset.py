"""Image-report pairs for contrastive pre-training, with reproducible per-sample randomness."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler

from .images import open_gray
from .transforms import TrainAugment, jitter_normalise

TEXT_MODES = ("report", "findings", "impression", "sentence")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def pair_text(findings: str, impression: str, mode: str, rng: np.random.Generator) -> str:
    """The text side of a pair. `sentence` draws one sentence, as ConVIRT trains."""
    findings, impression = (findings or "").strip(), (impression or "").strip()
    if mode == "findings":
        return findings or impression
    if mode == "impression":
        return impression or findings
    report = f"{findings} {impression}".strip()
    if mode == "report":
        return report
    if mode == "sentence":
        sentences = [s for s in _SENTENCE_END.split(report) if s]
        return sentences[int(rng.integers(len(sentences)))]
    raise ValueError(f"unknown text mode {mode!r}; expected one of {TEXT_MODES}")


class PairedImageTextDataset(Dataset):
    """Rows of a manifest table with absolute image paths (`path` column). A sample is (uint8 crop
    1 x S x S, jitter factors (brightness, contrast), text); `augment_on_device` finishes a batch.

    The random state of sample `i` in epoch `e` is seeded from (seed, e, i): augmentations and
    sentence choice are the same whatever the number of workers or processes, and after a resume.
    """

    def __init__(self, table: pd.DataFrame, transform: TrainAugment, text_mode: str = "report", seed: int = 0):
        """`transform.sample(image, rng)` draws its randomness from the sample's numpy rng."""
        if text_mode not in TEXT_MODES:
            raise ValueError(f"unknown text mode {text_mode!r}; expected one of {TEXT_MODES}")
        if len(table) == 0:
            raise ValueError("paired dataset is empty: no rows in the selected split")
        self.paths = [Path(p) for p in table["path"]]
        self.findings = table["findings"].fillna("").tolist()
        self.impressions = table["impression"].fillna("").tolist()
        self.transform = transform
        self.text_mode = text_mode
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        key = [self.seed, self.epoch, i]
        rng = np.random.default_rng(key)
        text = pair_text(self.findings[i], self.impressions[i], self.text_mode, rng)
        image, factors = self.transform.sample(open_gray(self.paths[i]), rng)
        return image, factors, text


class EpochShuffleSampler(Sampler[int]):
    """A permutation per epoch seeded from (seed, epoch), so a resumed run sees the same order."""

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True):
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        if not self.shuffle:
            return iter(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())


class ImageTextCollator:
    """Stacks the uint8 crops and their jitter factors and tokenises the batch's texts in one call
    (faster than per sample)."""

    def __init__(self, tokenizer, max_length: int):
        self.tokenizer, self.max_length = tokenizer, max_length
        # Lengths rounded up to a multiple of 16: few distinct shapes, so kernels are reused. The
        # tokenizer refuses a multiple that the truncation length is not (GLoRIA's 97): then none.
        self.multiple = 16 if max_length % 16 == 0 else None

    def __call__(self, batch):
        images, factors, texts = zip(*batch)
        tok = self.tokenizer(list(texts), padding="longest", truncation=True, max_length=self.max_length,
                             pad_to_multiple_of=self.multiple, return_tensors="pt")
        return {"images": torch.stack(images), "jitter": torch.tensor(factors, dtype=torch.float32),
                "input_ids": tok["input_ids"],
                "attention_mask": tok["attention_mask"], "texts": list(texts)}


def augment_on_device(batch: dict) -> dict:
    """A collated batch, moved to the device -> model inputs: jitter and normalisation of all its
    images at once (the device half of `TrainAugment`)."""
    out = {k: v for k, v in batch.items() if k != "jitter"}
    out["images"] = jitter_normalise(batch["images"], batch["jitter"])
    return out
