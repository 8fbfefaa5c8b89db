"""How well a text-to-image model draws the findings its prompts name (issue #22 item 3): a finding
classifier trained on the rendered images of the real corpus's train split (the phantom renderer's
own pictures of their scenes) scores images generated from the held-out (val) IMPRESSIONs, with
guidance and without; the AUC per finding against the scenes' labels is set beside the same
classifier's AUC on the rendered val images of those scenes (what a perfect generator would reach).

The classifier is a logistic regression per finding on standardized 32 x 32 pixels (scikit-learn):
on the default corpus it separates the rendered val findings with macro AUC ~0.85 (effusion, edema,
emphysema, tubes and lines, masses ~0.9-1.0; nodules and atelectasis, a few pixels at 32 px, ~0.55).
Rows whose image is defective (low quality, wrong view) or whose report belongs to another image
(unpaired) are left out of both training and scoring."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from ..images.diffusers_t2i import DiffusersT2I
from .real_corpus import corpus_rows, load_gray

CLASSIFIER_SIZE = 32  # pixels a side the classifier sees (generated and rendered images alike)
MIN_POSITIVES = 3  # a finding is scored where the val scenes have at least this many with and without it
UNGUIDED = 1.0  # guidance scale 1: the conditional model alone (no classifier-free guidance)


def _clean(rows):
    return rows[rows["defect"] == "none"].reset_index(drop=True)


def _has(rows, finding: str) -> np.ndarray:
    return np.array([finding in labels for labels in rows["labels"]])


def scored_findings(train, val) -> list[str]:
    """The findings with enough positives and negatives in the val scenes (and positives to learn from)."""
    names = sorted({f for labels in train["labels"] for f in labels})
    counts = {f: (_has(train, f).sum(), _has(val, f).sum()) for f in names}
    return [
        f
        for f, (tr, va) in counts.items()
        if tr >= 2 * MIN_POSITIVES and MIN_POSITIVES <= va <= len(val) - MIN_POSITIVES
    ]


class FindingClassifier:
    """One logistic regression per finding on standardized pixels of CLASSIFIER_SIZE images."""

    def __init__(self, images: np.ndarray, rows, findings: list[str]):
        x = images.reshape(len(images), -1)
        self.mean, self.std = x.mean(0), x.std(0) + 1e-3
        self.models = {
            f: LogisticRegression(C=0.01, max_iter=1000).fit((x - self.mean) / self.std, _has(rows, f))
            for f in findings
        }

    def auc(self, images: np.ndarray, rows) -> dict:
        """AUC per finding of `images` (N x S x S in [0, 1]) against `rows`' labels, and their macro mean."""
        x = (images.reshape(len(images), -1) - self.mean) / self.std
        out = {f: round(float(roc_auc_score(_has(rows, f), m.decision_function(x))), 4) for f, m in self.models.items()}
        return {**out, "macro": round(float(np.mean(list(out.values()))), 4) if out else None}


def _as_classifier_input(images: list[np.ndarray]) -> np.ndarray:
    size = (CLASSIFIER_SIZE, CLASSIFIER_SIZE)
    return np.stack(
        [np.asarray(Image.fromarray(im).resize(size, Image.BOX), dtype=np.float32) / 255.0 for im in images]
    )


def _generate(model_dir: Path, prompts: list[str], guidance: float, steps: int) -> tuple[np.ndarray, float]:
    """(images at CLASSIFIER_SIZE, images per second) drawn at the pipeline's native size."""
    t2i = DiffusersT2I(
        str(model_dir),
        guidance_scale=guidance,
        num_inference_steps=steps,
        batch_size=64,
        height=None,
        width=None,
        fp16=True,
    )
    start, cpu = time.perf_counter(), time.process_time()
    images = t2i.generate(prompts, [1_000_003 + i for i in range(len(prompts))])
    rates = len(prompts) / (time.perf_counter() - start), len(prompts) / max(time.process_time() - cpu, 1e-9)
    return _as_classifier_input(images), rates


def measure_quality(model_dir: Path, corpus: dict, cache_dir: str | Path, sampling: dict) -> dict:
    """Classifier AUCs of images generated from the val IMPRESSIONs (guided with
    sampling["guidance_scale"] and unguided) and of the rendered val images; images per second."""
    root, train = corpus_rows(corpus, cache_dir, "train")
    _, val = corpus_rows(corpus, cache_dir, "val")
    train, val = _clean(train), _clean(val)
    findings = scored_findings(train, val)
    clf = FindingClassifier(load_gray(root, train, CLASSIFIER_SIZE), train, findings)
    prompts, steps = val["impression"].tolist(), int(sampling["num_inference_steps"])
    guided, (per_s, per_cpu_s) = _generate(model_dir, prompts, float(sampling["guidance_scale"]), steps)
    unguided, _ = _generate(model_dir, prompts, UNGUIDED, steps)
    return {
        "classifier": f"logistic regression per finding on {CLASSIFIER_SIZE}x{CLASSIFIER_SIZE} pixels",
        "n_prompts": len(prompts),
        "findings": findings,
        "auc_rendered": clf.auc(load_gray(root, val, CLASSIFIER_SIZE), val),
        "auc_guided": clf.auc(guided, val),
        "auc_unguided": clf.auc(unguided, val),
        "guidance_scale": float(sampling["guidance_scale"]),
        "num_inference_steps": steps,
        "images_per_second": round(per_s, 2),  # guided, wall clock (on a GPU when there is one)
        "images_per_cpu_second": round(per_cpu_s, 2),  # the same per second of this process's CPU time
    }
