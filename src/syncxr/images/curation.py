"""SynCXR's image curation: the MLLM's six questions, then similarity to a bank of known-bad images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..backends import ImageEmbedder, ImageJudge
from ..data.images import load_gray
from ..phantom.renderer import render
from ..phantom.scene import sample_scene
from ..reports.backend_failure import is_backend_failure


def phantom_bad_images(n: int = 32, seed: int = 777, size: int = 128) -> list[np.ndarray]:
    """Known-bad phantom images for the similarity bank: wrong (lateral) views. Exposure, noise and
    blur defects are left to the judge: a badly exposed chest still has a chest's layout."""
    rng = np.random.default_rng(seed)
    return [render(sample_scene(rng, [], view="LATERAL"), size)[0] for _ in range(n)]


def rejected_images(curated_dir: str | Path, stage: str = "judge") -> list[np.ndarray]:
    """The images a real corpus's curation dropped at `stage` (its curation.parquet): SynCXR's bank of
    known-bad images is what the MLLM rejected from the real corpus."""
    import pandas as pd  # noqa: PLC0415

    table = pd.read_parquet(Path(curated_dir) / "curation.parquet")
    paths = table.loc[table["stage"] == stage, "path"].tolist()
    if not paths:
        raise ValueError(
            f"{curated_dir}: the curation dropped no image at stage {stage!r}: the bad bank would be "
            "empty (use curation.bad_bank=<a directory of bad images> or phantom)"
        )
    return [load_gray(p)[0].numpy() for p in paths]


def load_image_bank(directory: str | Path) -> list[np.ndarray]:
    directory = Path(directory)
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not files:
        raise FileNotFoundError(f"bad-image bank {directory} holds no .png/.jpg images")
    return [load_gray(p)[0].numpy() for p in files]


class Curator:
    """`check(images)` -> per image (passed, reason), reasons 'judge:<question>' or 'similar_to_bad';
    or the judge's `BackendFailure` where its backend failed (the image was not checked). The judge
    rejects an image answered NO to `drop_if_no` of its questions: "all" (SynCXR) or "any"."""

    def __init__(
        self,
        judge: ImageJudge | None,
        embedder: ImageEmbedder,
        bad_images: list[np.ndarray],
        delta: float,
        drop_if_no: str,
    ):
        if not -1.0 <= delta <= 1.0:
            raise ValueError(f"curation delta is a cosine similarity in [-1, 1], got {delta}")
        if drop_if_no not in ("all", "any"):
            raise ValueError(f"curation drop_if_no must be 'all' or 'any', got {drop_if_no!r}")
        self.judge, self.embedder, self.delta, self.drop_if_no = judge, embedder, delta, drop_if_no
        self.bank = embedder.embed(bad_images) if bad_images else None

    def max_similarity(self, images: list[np.ndarray]) -> np.ndarray:
        if self.bank is None:
            return np.full(len(images), -1.0)
        return (self.embedder.embed(images) @ self.bank.T).max(axis=1)

    def check(self, images: list[np.ndarray]) -> list[tuple[bool, str]]:
        answers = self.judge.judge(images) if self.judge is not None else [{}] * len(images)
        sims = self.max_similarity(images)
        out = []
        for a, s in zip(answers, sims):
            if is_backend_failure(a):
                out.append(a)
                continue
            no = [q for q, yes in a.items() if not yes]
            if no and (self.drop_if_no == "any" or len(no) == len(a)):
                out.append((False, "judge:" + ",".join(no)))
            elif s > self.delta:
                out.append((False, "similar_to_bad"))
            else:
                out.append((True, ""))
        return out
