"""Zero-shot classification: a positive and a negative prompt per class, compared with each image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..data.images import load_gray
from .metrics import best_f1_threshold, classification_metrics


class ImageFiles(Dataset):
    def __init__(self, paths: list[Path], transform):
        self.paths, self.transform = list(paths), transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return self.transform(load_gray(self.paths[i]))


@torch.no_grad()
def encode_images(model, paths, transform, batch_size: int, accelerator, num_workers: int = 0,
                  desc: str = "encode images") -> torch.Tensor:
    loader = DataLoader(ImageFiles(paths, transform), batch_size=batch_size, num_workers=num_workers)
    model.eval()
    out = []
    for x in tqdm(loader, desc=desc, disable=not accelerator.is_local_main_process, leave=False):
        with accelerator.autocast():
            out.append(model.encode_image(x.to(accelerator.device)).float().cpu())
    return torch.cat(out)


@torch.no_grad()
def encode_prompts(model, tokenizer, prompts: list[str], max_length: int, accelerator) -> torch.Tensor:
    """Mean of the normalised embeddings of a prompt ensemble, renormalised."""
    tok = tokenizer(prompts, padding="longest", truncation=True, max_length=max_length, return_tensors="pt")
    model.eval()
    with accelerator.autocast():
        emb = model.encode_text(tok["input_ids"].to(accelerator.device),
                                tok["attention_mask"].to(accelerator.device)).float().cpu()
    return torch.nn.functional.normalize(emb.mean(0), dim=-1)


def class_prompts(class_name: str, positive: list[str], negative: list[str]) -> tuple[list[str], list[str]]:
    """Fills `{}` in the templates with the lower-case class name."""
    name = class_name.lower()
    return [t.format(name) for t in positive], [t.format(name) for t in negative]


def prompt_scores(image_emb: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
                  temperature: float = 0.1) -> np.ndarray:
    """P(positive) per image and class: softmax over the (positive, negative) similarities.

    image_emb: N x D (normalised); pos, neg: C x D. Returns N x C.
    """
    logits = torch.stack([image_emb @ pos.t(), image_emb @ neg.t()], dim=-1) / temperature
    return logits.softmax(-1)[..., 0].numpy()


def zeroshot_classification(model, tokenizer, transform, accelerator, classes: list[str],
                            test_paths, test_labels: np.ndarray, val_paths=None, val_labels=None,
                            positive: list[str] = ("{}.",), negative: list[str] = ("no {}.",),
                            max_length: int = 64, batch_size: int = 64) -> dict[str, float]:
    """Metrics per class and mean. F1/ACC thresholds come from the validation split when given,
    else 0.5 (the positive prompt wins)."""
    pos, neg = zip(*[class_prompts(c, list(positive), list(negative)) for c in classes])
    pos_emb = torch.stack([encode_prompts(model, tokenizer, p, max_length, accelerator) for p in pos])
    neg_emb = torch.stack([encode_prompts(model, tokenizer, n, max_length, accelerator) for n in neg])
    test = prompt_scores(encode_images(model, test_paths, transform, batch_size, accelerator), pos_emb, neg_emb)
    if val_paths is not None:
        val = prompt_scores(encode_images(model, val_paths, transform, batch_size, accelerator), pos_emb, neg_emb)
        thresholds = np.array([best_f1_threshold(np.asarray(val_labels)[:, c], val[:, c])
                               for c in range(len(classes))])
    else:
        thresholds = np.full(len(classes), 0.5)
    return classification_metrics(np.asarray(test_labels), test, thresholds, list(classes))
