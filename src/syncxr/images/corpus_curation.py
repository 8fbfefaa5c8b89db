"""Curation of a real image-report corpus (SynCXR section 3.1).

Step 1 asks the judge its six questions of every image and drops the images it rejects (the paper:
answered NO to all six; `drop_if_no="any"` drops on a single NO). Step 2 embeds every image and drops
the kept images whose cosine similarity to any image dropped in step 1 exceeds delta: near-duplicates
of what the judge caught. The curated corpus is written in the dataset format beside the analysis
(`curation.parquet` per image, `curation.json` counts, `contact_sheet.png` examples), cached by the
hash of the corpus and the curation settings.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..backends import ImageEmbedder, ImageJudge
from ..config_choices import DROP_RULES
from ..data.dataset_format import (
    INFO,
    MANIFEST,
    DatasetBuilder,
    config_hash,
    is_complete,
    read_dataset,
    write_json_atomic,
    write_parquet_atomic,
)
from ..data.durable import link_file
from ..data.images import load_gray
from ..reports.backend_failure import is_backend_failure
from .judge import QUESTIONS

IMAGES_LINKED = "linked"  # dataset.json `images`: the kept images are linked into the curated directory


@dataclass(frozen=True)
class CorpusCurationSettings:
    delta: float = 0.5  # cosine similarity to a judge-dropped image above which a kept image goes too
    drop_if_no: str = "all"  # judge step drops an image answered NO to "all" six questions or to "any"
    batch_size: int = 64  # images judged and embedded per batch

    def __post_init__(self):
        if self.drop_if_no not in DROP_RULES:
            raise ValueError(f"curation drop_if_no must be one of {DROP_RULES}, got {self.drop_if_no!r}")
        if not -1.0 <= self.delta <= 1.0:
            raise ValueError(f"curation delta is a cosine similarity in [-1, 1], got {self.delta}")
        if self.batch_size < 1:
            raise ValueError(f"curation batch_size must be >= 1, got {self.batch_size}")


def _load(path: str) -> np.ndarray | None:
    try:
        return load_gray(path)[0].numpy()
    except (FileNotFoundError, ValueError):
        return None


def judge_and_embed(
    paths: list[str], judge: ImageJudge, embedder: ImageEmbedder, batch_size: int, progress: bool = True
) -> tuple[pd.DataFrame, np.ndarray]:
    """Per image: the six answers and whether it could be read; and the (n, d) embedding matrix
    (zeros for unreadable images, which are dropped as such)."""
    answers, readable, embeddings = [], [], []
    for i in tqdm(range(0, len(paths), batch_size), desc="curation: judge + embed", disable=not progress):
        images = [_load(p) for p in paths[i : i + batch_size]]
        ok = [im for im in images if im is not None]
        verdicts = judge.judge(ok) if ok else []
        failed = [v for v in verdicts if is_backend_failure(v)]
        if failed:  # never pass or drop an image nobody looked at: stop, nothing is written yet
            raise RuntimeError(
                f"curation: the judge's backend failed on {len(failed)} of {len(ok)} images "
                f"({failed[0].reason}); nothing was written, re-run the same command to retry"
            )
        got = iter(verdicts)
        emb = iter(embedder.embed(ok)) if ok else iter(())
        for im in images:
            readable.append(im is not None)
            answers.append(next(got) if im is not None else dict.fromkeys(QUESTIONS, False))
            embeddings.append(next(emb) if im is not None else None)
    dim = next((len(e) for e in embeddings if e is not None), 1)
    mat = (
        np.stack([e if e is not None else np.zeros(dim, np.float32) for e in embeddings])
        if paths
        else np.zeros((0, dim), np.float32)
    )
    table = pd.DataFrame(answers, columns=list(QUESTIONS)).astype(bool)
    table["readable"] = readable
    return table, mat


def curation_decisions(
    answers: pd.DataFrame, embeddings: np.ndarray, settings: CorpusCurationSettings, chunk: int = 4096
) -> pd.DataFrame:
    """Adds `n_yes`, `max_sim_to_dropped` and `stage` (kept | unreadable | judge | similarity)."""
    out = answers.copy()
    yes = out[list(QUESTIONS)].to_numpy()
    out["n_yes"] = yes.sum(axis=1)
    judged_bad = (~yes).all(axis=1) if settings.drop_if_no == "all" else (~yes).any(axis=1)
    stage = np.where(~out["readable"].to_numpy(), "unreadable", np.where(judged_bad, "judge", "kept"))
    bank = embeddings[stage == "judge"]
    sims = np.full(len(out), np.nan)
    kept = np.flatnonzero(stage == "kept")
    if len(bank):
        for i in range(0, len(kept), chunk):  # (chunk x bank) at a time: 200k x 10k would not fit
            idx = kept[i : i + chunk]
            sims[idx] = (embeddings[idx] @ bank.T).max(axis=1)
        stage[kept[sims[kept] > settings.delta]] = "similarity"
    out["max_sim_to_dropped"] = sims
    out["stage"] = stage
    return out


def removal_quality(stage: pd.Series, defect: pd.Series, visible=("low_quality", "wrong_view")) -> dict:
    """Recall and precision of the removal against planted defects (only where ground truth exists,
    i.e. the phantom corpus). Unpaired reports are invisible to an image filter, so not counted."""
    removed = stage.to_numpy() != "kept"
    bad = defect.isin(list(visible)).to_numpy()
    out = {
        "planted": int(bad.sum()),
        "removed": int(removed.sum()),
        "removed_planted": int((removed & bad).sum()),
        "recall": float((removed & bad).sum() / bad.sum()) if bad.sum() else float("nan"),
        "precision": float((removed & bad).sum() / removed.sum()) if removed.sum() else float("nan"),
    }
    for name in visible:
        m = (defect == name).to_numpy()
        out[f"recall_{name}"] = float((removed & m).sum() / m.sum()) if m.sum() else float("nan")
    for s in ("judge", "similarity"):
        by = stage.to_numpy() == s
        out[f"precision_{s}"] = float((by & bad).sum() / by.sum()) if by.sum() else float("nan")
    return out


def save_contact_sheet(table: pd.DataFrame, path: Path, per_stage: int = 8, seed: int = 0) -> None:
    """A row of example images per stage (kept, dropped by the judge, dropped by similarity)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [s for s in ("kept", "judge", "similarity") if (table["stage"] == s).any()]
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(
        max(len(stages), 1), per_stage, figsize=(1.6 * per_stage, 1.9 * max(len(stages), 1)), squeeze=False
    )
    for ax in axes.ravel():
        ax.axis("off")
    for r, s in enumerate(stages):
        rows = table[table["stage"] == s]
        pick = rows.iloc[np.sort(rng.choice(len(rows), size=min(per_stage, len(rows)), replace=False))]
        for c, (_, row) in enumerate(pick.iterrows()):
            axes[r, c].imshow(load_gray(row["path"])[0].numpy(), cmap="gray", vmin=0, vmax=255)
            no = [q for q in QUESTIONS if not row[q]]
            note = (
                ("NO: " + ",".join(no)) if no else f"sim {row['max_sim_to_dropped']:.2f}" if s == "similarity" else ""
            )
            axes[r, c].set_title(f"{row['id']}\n{note}"[:40], fontsize=5)
        axes[r, 0].text(
            -0.1,
            0.5,
            {"kept": "kept", "judge": "dropped:\njudge", "similarity": "dropped:\nsimilar"}[s],
            transform=axes[r, 0].transAxes,
            ha="right",
            va="center",
            fontsize=8,
        )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def curate_corpus(
    source: Path,
    target: Path,
    judge: ImageJudge,
    embedder: ImageEmbedder,
    settings: CorpusCurationSettings,
    progress: bool = True,
) -> dict:
    """Curates the dataset at `source` into `target` (atomically); returns the counts."""
    df, info = read_dataset(source)
    paths = [str(source / p) for p in df["image"]]
    answers, emb = judge_and_embed(paths, judge, embedder, settings.batch_size, progress)
    table = curation_decisions(answers, emb, settings)
    table.insert(0, "id", df["id"].to_numpy())
    table.insert(1, "path", paths)
    counts = {
        "rows": int(len(df)),
        "unreadable": int((table["stage"] == "unreadable").sum()),
        "judge": int((table["stage"] == "judge").sum()),
        "similarity": int((table["stage"] == "similarity").sum()),
        "kept": int((table["stage"] == "kept").sum()),
        "answered_no": {q: int((~table[q] & table["readable"]).sum()) for q in QUESTIONS},
    }
    if "defect" in df.columns:
        counts["removal_vs_planted"] = removal_quality(table["stage"], df["defect"])
    keep = (table["stage"] == "kept").to_numpy()
    with DatasetBuilder(target, subdirs=()) as tmp:
        curated = link_images(df[keep].reset_index(drop=True), source, tmp)
        write_parquet_atomic(tmp / MANIFEST, curated)
        write_parquet_atomic(tmp / "curation.parquet", table)
        save_contact_sheet(table, tmp / "contact_sheet.png")
        write_json_atomic(tmp / "curation.json", counts)
        write_json_atomic(
            tmp / INFO,
            {
                "name": f"{info.get('name', source.name)}_curated",
                "source": str(source),
                "source_hash": info.get("hash"),
                "curation": asdict(settings),
                "judge": getattr(judge, "name", type(judge).__name__),
                "embedder": getattr(embedder, "name", type(embedder).__name__),
                "counts": counts,
                "images": IMAGES_LINKED,
            },
        )
    return counts


def link_images(df: pd.DataFrame, source: Path, directory: Path) -> pd.DataFrame:
    """`df` (rows of the dataset at `source`) with its images linked into `directory` (no copies),
    so the curated dataset is self-contained like any other: no image path leaves it."""
    out = df.copy()
    images = []
    for i, rel in enumerate(df["image"]):
        # An image that lies outside `source` (a source read with allow_external_images) gets a new name.
        inside = os.path.normpath(os.path.join(os.path.abspath(source), rel)).startswith(
            os.path.abspath(source) + os.sep
        )
        name = os.path.normpath(rel) if inside else f"images/external/{i:07d}{Path(rel).suffix}"
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        link_file(source / rel, directory / name)
        images.append(name)
    out["image"] = images
    return out


def _relink_old_layout(target: Path, source: Path) -> None:
    """Curated corpora made before images were linked point at `../<source>/...`: link them in."""
    info = json.loads((target / INFO).read_text())
    if info.get("images") == IMAGES_LINKED:
        return
    df = pd.read_parquet(target / MANIFEST)
    df["image"] = [os.path.relpath(target / p, source) for p in df["image"]]  # relative to the source again
    write_parquet_atomic(target / MANIFEST, link_images(df, source, target))
    write_json_atomic(target / INFO, {**info, "images": IMAGES_LINKED})


def ensure_curated_corpus(
    source: Path,
    judge: ImageJudge,
    embedder: ImageEmbedder,
    settings: CorpusCurationSettings,
    backends: dict,
    progress: bool = True,
) -> Path:
    """The curated copy of `source` beside it, built on first use. `backends` (the judge and embedding
    config) is part of the cache key: another judge gives another curated corpus."""
    info_path = Path(source) / INFO  # only the corpus hash is needed: a cache hit reads no manifest
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    # batch_size only says how many images go to the backends at once: not part of the address.
    addressed = {k: v for k, v in asdict(settings).items() if k != "batch_size"}
    key = config_hash(
        {"source": info.get("hash", str(Path(source).resolve())), "settings": addressed, "backends": backends}
    )
    target = Path(source).with_name(f"{Path(source).name}-curated-{key}")
    if is_complete(target):
        _relink_old_layout(target, Path(source))
    else:
        counts = curate_corpus(Path(source), target, judge, embedder, settings, progress)
        if progress:
            print(
                f"curation of {source}: {counts['judge']} dropped by the judge, {counts['similarity']} by "
                f"similarity, {counts['unreadable']} unreadable; {counts['kept']} of {counts['rows']} kept "
                f"({target})"
            )
    return target
