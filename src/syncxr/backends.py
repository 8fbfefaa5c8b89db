"""The written contracts of the backends: what generation, curation and the partially synthetic sets
may call on each kind. A new backend is one class named by a preset's `_target_` in its config group
(conf/llm, conf/ner, conf/imagegen, conf/curation's judge and embedding, conf/i2r) that satisfies the
group's protocol here; what planning code needs to know of a *configured* backend (is it the phantom
world's own, CPU-only, without external weights?) is declared by its preset (`phantom_world`, read
by syncxr.config.is_phantom_preset), since one class serves phantom and real presets alike.

Answers a backend could not give because its server failed are `BackendFailure`s
(syncxr.reports.backend_failure), never exceptions: the sample is kept as retryable.

The generating backends (LLM, NER, TextToImage) declare `quality`: the figures measured of the model
(a learned phantom backend's build record: held-out loss, span F1, classifier AUC, images/s), empty
for one that was never measured; generation records them in dataset.json (`backend_quality`).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

# A text answer: the text, None (no usable answer: counts as a content failure), or a BackendFailure.
Answer = Any


@runtime_checkable
class LLM(Protocol):
    """Writes report sections (conf/llm)."""

    name: str
    quality: dict  # measured figures of the model ({} if none): dataset.json's backend_quality.llm

    def generate(self, requests: list) -> list[Answer]:
        """One answer per syncxr.reports.requests.ReportRequest (its messages() and seed), in order."""
        ...

    def counters(self) -> dict[str, int]:
        """Running totals (calls, retries, HTTP errors, ...) recorded per shard in dataset.json."""
        ...


@runtime_checkable
class NER(Protocol):
    """Finds RaTE entities in report text (conf/ner)."""

    name: str
    quality: dict  # measured figures of the model ({} if none): dataset.json's backend_quality.ner

    def extract(self, text: str) -> list[dict]:
        """[{"name", "type"}] in order of appearance, each once."""
        ...

    def extract_batch(self, texts: list[str]) -> list[list[dict]]: ...


@runtime_checkable
class TextToImage(Protocol):
    """Draws a radiograph from report text (conf/imagegen)."""

    name: str
    quality: dict  # measured figures of the model ({} if none): dataset.json's backend_quality.imagegen

    def generate(self, prompts: list[str], seeds: list[int]) -> list[np.ndarray | Answer]:
        """One uint8 H x W image per prompt, each a function of its own seed (or a BackendFailure; or
        None where the model answered no image, a content failure that is drawn again)."""
        ...

    def counters(self) -> dict[str, int]: ...


def quality_record(llm: LLM, ner: NER, t2i: TextToImage) -> dict:
    """dataset.json's `backend_quality`: each generating backend's measured figures (copies)."""
    return {"llm": dict(llm.quality), "ner": dict(ner.quality), "imagegen": dict(t2i.quality)}


@runtime_checkable
class ImageJudge(Protocol):
    """Answers the six quality questions of syncxr.images.judge.QUESTIONS (conf/curation's judge)."""

    name: str

    def judge(self, images: list[np.ndarray]) -> list[dict[str, bool] | Answer]:
        """Per image {question: yes} (or a BackendFailure)."""
        ...

    def counters(self) -> dict[str, int]: ...


@runtime_checkable
class ImageEmbedder(Protocol):
    """Embeds images for similarity to a bank of bad ones (conf/curation's embedding)."""

    name: str

    def embed(self, images: list[np.ndarray]) -> np.ndarray:
        """N x D, each row L2-normalised (cosine similarity is a dot product)."""
        ...


@runtime_checkable
class ImageToReport(Protocol):
    """Writes a report for a real image (conf/i2r)."""

    name: str
    # True: describe() reads each row's ground-truth `labels` (passed as labels=...), not the image;
    # such a backend serves only datasets with a `labels` column.
    reads_labels: bool

    def describe(self, images: list[np.ndarray], seeds: list[int], **row_columns) -> list[Answer]:
        """One answer per image: a report with FINDINGS and IMPRESSION sections."""
        ...

    def counters(self) -> dict[str, int]: ...
