"""Image-report pairs for contrastive pre-training, with reproducible per-sample randomness."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler

from ..config_choices import ON_ERROR, TEXT_MODES
from .images import open_gray
from .transforms import TrainAugment, jitter_normalise

log = logging.getLogger(__name__)
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

    A row whose image is missing (checked here, up front) or does not decode (found when loaded)
    fails with the manifest and the row named (`manifest`, `manifest_row` columns, as `load_table`
    gives them), or with `on_error="skip"` is left out and counted: missing ones in `skipped`,
    undecodable ones by the collator (`ImageTextCollator` drops the sample, the batch says which).
    """

    def __init__(
        self,
        table: pd.DataFrame,
        transform: TrainAugment,
        text_mode: str = "report",
        seed: int = 0,
        on_error: str = "raise",
    ):
        """`transform.sample(image, rng)` draws its randomness from the sample's numpy rng."""
        if text_mode not in TEXT_MODES:
            raise ValueError(f"unknown text mode {text_mode!r}; expected one of {TEXT_MODES}")
        if on_error not in ON_ERROR:
            raise ValueError(f"data.on_error must be one of {ON_ERROR}, got {on_error!r}")
        if len(table) == 0:
            raise ValueError("paired dataset is empty: no rows in the selected split")
        self.on_error = on_error
        table = self._drop_missing(table.reset_index(drop=True))
        self.paths = [Path(p) for p in table["path"]]
        self.findings = table["findings"].fillna("").tolist()
        self.impressions = table["impression"].fillna("").tolist()
        self.ids = table["id"].tolist() if "id" in table else [None] * len(table)
        self.manifests = table["manifest"].tolist() if "manifest" in table else [None] * len(table)
        self.rows = table["manifest_row"].tolist() if "manifest_row" in table else list(range(len(table)))
        self.transform = transform
        self.text_mode = text_mode
        self.seed = seed
        self.epoch = 0

    def _drop_missing(self, table: pd.DataFrame) -> pd.DataFrame:
        exists = np.array([Path(p).is_file() for p in table["path"]], dtype=bool)
        self.skipped = int((~exists).sum())  # rows left out because their image is missing
        if exists.all():
            return table
        first = int(np.flatnonzero(~exists)[0])
        where = self._where_in(table, first)
        if self.on_error == "raise":
            raise FileNotFoundError(
                f"{where}: image {table['path'].iloc[first]} not found ({self.skipped} "
                f"missing in all; data.on_error=skip leaves them out)"
            )
        log.warning("%d rows left out: image missing (data.on_error=skip), e.g. %s", self.skipped, where)
        table = table[exists].reset_index(drop=True)
        if len(table) == 0:
            raise ValueError(f"paired dataset is empty: every image is missing, e.g. {where}")
        return table

    @staticmethod
    def _where_in(table: pd.DataFrame, i: int) -> str:
        row = table.iloc[i]
        manifest = row["manifest"] if "manifest" in table else "manifest"
        n = int(row["manifest_row"]) if "manifest_row" in table else i
        return f"{manifest}: row {n}" + (f" (id {row['id']!r})" if "id" in table else "")

    def where(self, i: int) -> str:
        """Where row `i` comes from, for error messages: the manifest, its row and id."""
        return f"{self.manifests[i] or 'manifest'}: row {self.rows[i]}" + (
            f" (id {self.ids[i]!r})" if self.ids[i] is not None else ""
        )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        """(uint8 crop, jitter factors, text), or with on_error="skip" (None, None, i) when the image
        cannot be loaded."""
        key = [self.seed, self.epoch, i]
        rng = np.random.default_rng(key)
        text = pair_text(self.findings[i], self.impressions[i], self.text_mode, rng)
        try:
            image = open_gray(self.paths[i])
        except (FileNotFoundError, ValueError) as e:
            if self.on_error == "skip":
                return None, None, i
            raise type(e)(f"{self.where(i)}: {e}") from e
        crop, factors = self.transform.sample(image, rng)
        return crop, factors, text


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
    (faster than per sample). Samples whose image failed to load (on_error="skip") are dropped;
    `skipped` lists their dataset rows."""

    def __init__(self, tokenizer, max_length: int):
        self.tokenizer, self.max_length = tokenizer, max_length
        # Lengths rounded up to a multiple of 16: few distinct shapes, so kernels are reused. The
        # tokenizer refuses a multiple that the truncation length is not (GLoRIA's 97): then none.
        self.multiple = 16 if max_length % 16 == 0 else None

    def __call__(self, batch):
        skipped = [i for image, _, i in batch if image is None]
        batch = [b for b in batch if b[0] is not None]
        if not batch:
            return {
                "images": torch.zeros(0, dtype=torch.uint8),
                "jitter": torch.zeros(0, 2),
                "input_ids": torch.zeros(0, dtype=torch.long),
                "attention_mask": torch.zeros(0, dtype=torch.long),
                "texts": [],
                "skipped": skipped,
            }
        images, factors, texts = zip(*batch)
        tok = self.tokenizer(
            list(texts),
            padding="longest",
            truncation=True,
            max_length=self.max_length,
            pad_to_multiple_of=self.multiple,
            return_tensors="pt",
        )
        return {
            "images": torch.stack(images),
            "jitter": torch.tensor(factors, dtype=torch.float32),
            "input_ids": tok["input_ids"],
            "attention_mask": tok["attention_mask"],
            "texts": list(texts),
            "skipped": skipped,
        }


def augment_on_device(batch: dict, normalize: str = "standard") -> dict:
    """A collated batch, moved to the device -> model inputs: jitter and normalisation of all its
    images at once (the device half of `TrainAugment`; `normalize` names the PIXEL_NORMS entry)."""
    out = {k: v for k, v in batch.items() if k != "jitter"}
    out["images"] = jitter_normalise(batch["images"], batch["jitter"], normalize)
    return out
