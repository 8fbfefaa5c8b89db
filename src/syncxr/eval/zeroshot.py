"""Zero-shot classification: a positive and a negative prompt per class, compared with each image.

The pieces are separate so that the scoring (prompts -> scores -> thresholds -> metrics) can run on
cached image embeddings (`syncxr.eval.embeddings`): re-scoring new prompts encodes only the prompts.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from ..config_choices import PROTOCOLS
from ..models.protocols import VisionLanguageModel
from .metrics import best_f1_threshold, classification_metrics


@contextmanager
def one_thread_on_cpu(device):
    """Runs a handful of tiny tensors on one CPU thread: with several, each small op waits for the
    other threads, which on a loaded machine dominates the time
    (docs/measurements.md#zero-shot-scoring-on-one-thread)."""
    if torch.device(device).type != "cpu":
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@torch.no_grad()
def encode_prompts(
    model: VisionLanguageModel, tokenizer, prompts: list[str], max_length: int, accelerator
) -> torch.Tensor:
    """Mean of the normalised embeddings of a prompt ensemble, renormalised."""
    tok = tokenizer(prompts, padding="longest", truncation=True, max_length=max_length, return_tensors="pt")
    model.eval()
    with accelerator.autocast(), one_thread_on_cpu(accelerator.device):
        emb = (
            model.encode_text(tok["input_ids"].to(accelerator.device), tok["attention_mask"].to(accelerator.device))
            .float()
            .cpu()
        )
    return torch.nn.functional.normalize(emb.mean(0), dim=-1)


def class_prompts(class_name: str, positive: list[str], negative: list[str]) -> tuple[list[str], list[str]]:
    """Fills `{}` in the templates with the lower-case class name."""
    name = class_name.lower()
    return [t.format(name) for t in positive], [t.format(name) for t in negative]


def fill_prompts(names, templates) -> list[str]:
    """Templates filled with a class's prompt name, or with each of several names (a synonym ensemble)."""
    names = [names] if isinstance(names, str) else list(names)
    return [t.format(n.lower()) for n in names for t in templates]


def name_spans(names, templates) -> list[tuple[int, int]]:
    """(start, end) character span of the class name in each prompt of `fill_prompts`, same order."""
    names = [names] if isinstance(names, str) else list(names)
    return [(t.index("{}"), t.index("{}") + len(n)) for n in names for t in templates]


def prompt_embeddings(
    model: VisionLanguageModel, tokenizer, names: list, positive, negative, max_length: int, accelerator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(positive C x D, negative C x D) prompt-ensemble embeddings of the classes; each class is one
    prompt name or a list of names whose filled templates are pooled into one ensemble."""
    pos = [fill_prompts(n, list(positive)) for n in names]
    neg = [fill_prompts(n, list(negative)) for n in names]
    pos_emb = torch.stack([encode_prompts(model, tokenizer, p, max_length, accelerator) for p in pos])
    neg_emb = torch.stack([encode_prompts(model, tokenizer, n, max_length, accelerator) for n in neg])
    return pos_emb, neg_emb


def prompt_scores(
    image_emb: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, temperature: float = 0.1
) -> np.ndarray:
    """P(positive) per image and class: softmax over the (positive, negative) similarities.

    image_emb: N x D (normalised); pos, neg: C x D. Returns N x C.
    """
    logits = torch.stack([image_emb @ pos.t(), image_emb @ neg.t()], dim=-1) / temperature
    return logits.softmax(-1)[..., 0].numpy()


def choose_thresholds(
    protocol: str, test_labels, test_scores, val_labels=None, val_scores=None
) -> tuple[np.ndarray, str]:
    """Per-class F1/ACC thresholds and where they came from.

    `val`: best F1 on the validation split (0.5, "the positive prompt wins", without one);
    `paper`: best F1 on the test split itself, the published practice (optimistic).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if protocol == "paper":
        labels, scores, source = test_labels, test_scores, "test"
    elif val_scores is not None:
        labels, scores, source = val_labels, val_scores, "valid"
    else:
        return np.full(np.asarray(test_scores).shape[1], 0.5), "fixed 0.5"
    labels, scores = np.asarray(labels), np.asarray(scores)
    return np.array([best_f1_threshold(labels[:, c], scores[:, c]) for c in range(labels.shape[1])]), source


def score_zeroshot(
    test_emb, test_labels, pos_emb, neg_emb, classes: list[str], protocol: str = "val", val_emb=None, val_labels=None
) -> tuple[dict[str, float], np.ndarray, str]:
    """(metrics, thresholds, threshold source) from image embeddings and prompt embeddings."""
    test = prompt_scores(test_emb, pos_emb, neg_emb)
    val = None if val_emb is None else prompt_scores(val_emb, pos_emb, neg_emb)
    thresholds, source = choose_thresholds(protocol, test_labels, test, val_labels, val)
    return classification_metrics(np.asarray(test_labels), test, thresholds, list(classes)), thresholds, source
