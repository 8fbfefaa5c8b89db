"""Image-text retrieval on a held-out paired set: Recall@K in both directions.

The paired set is a dataset in the syncxr format (a phantom corpus never trained on, or any
directory with `manifest.parquet`); image i's match is text i (the standard protocol: a report
repeated word for word elsewhere in the set still counts as a miss, so R@K is a lower bound).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config_choices import TEXT_FIELDS
from ..data.benchmark_split import Split
from ..data.dataset_format import MANIFEST
from ..data.mixing import load_table
from ..models.protocols import VisionLanguageModel
from .metrics import recall_at_k


def paired_split(directory: str | Path, split: str | None, text: str) -> tuple[Split, list[str]]:
    """(image Split, texts) of the rows of `split` (None: all rows) of a syncxr dataset."""
    directory = Path(directory)
    df = load_table(directory, split)  # refuses image paths that leave the dataset directory
    if df.empty:
        raise ValueError(f"{directory / MANIFEST}: no rows with split={split!r}")
    if text not in TEXT_FIELDS:
        raise ValueError(f"retrieval text must be one of {TEXT_FIELDS}, got {text!r}")
    if text == "report":
        texts = (df["findings"].fillna("").astype(str) + " " + df["impression"].fillna("").astype(str)).str.strip()
    else:
        texts = df[text].fillna("").astype(str)
    s = Split(
        source=directory / MANIFEST,
        ids=[str(i) for i in df["id"]],
        paths=[Path(p) for p in df["path"]],
        rows=[int(r) for r in df["manifest_row"]],
        classes=[],
        labels=np.zeros((len(df), 0), dtype=np.int64),
    )
    return s, list(texts)


@torch.no_grad()
def encode_texts(
    model: VisionLanguageModel, tokenizer, texts: list[str], max_length: int, accelerator, batch_size: int = 128
) -> torch.Tensor:
    out = []
    model.eval()
    for start in tqdm(
        range(0, len(texts), batch_size),
        desc="encode texts",
        leave=False,
        disable=not accelerator.is_local_main_process,
    ):
        tok = tokenizer(
            texts[start : start + batch_size],
            padding="longest",
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        with accelerator.autocast():
            out.append(
                model.encode_text(tok["input_ids"].to(accelerator.device), tok["attention_mask"].to(accelerator.device))
                .float()
                .cpu()
            )
    return torch.cat(out)


def retrieval_metrics(image_emb: torch.Tensor, text_emb: torch.Tensor, ks=(1, 5, 10)) -> dict[str, float]:
    """`i2t_r{k}` and `t2i_r{k}` from normalised embeddings (row i of each is a pair)."""
    sim = (image_emb @ text_emb.t()).numpy()
    out = {f"i2t_r{k}": v for k, v in recall_at_k(sim, ks).items()}
    out.update({f"t2i_r{k}": v for k, v in recall_at_k(sim.T, ks).items()})
    out["n_pairs"] = float(len(sim))
    return out
