"""Fine-tuned classification with a fraction of the training labels: a linear probe on the frozen
(pooled, pre-projection) image features, and a full fine-tune of the image encoder with a linear head.

The labelled subset is drawn with a seed; it is topped up so that every class has at least one
positive and one negative example where the full training split has them (1 % of a small twin
could otherwise be all negative). Full fine-tuning runs a number of epochs over the subset (the
published protocol) or a fixed number of optimiser steps whatever the fraction (`budget_sampler`);
with `early_stopping` it scores the validation split after every epoch and ends with the best
epoch's weights (`early_stopping.fit_with_early_stopping`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler
from tqdm.auto import tqdm

from ..data.benchmark_split import Split
from ..data.finetune_augment import RandAugmentCrop
from ..data.transforms import eval_transform, train_transform
from .early_stopping import EarlyStopping, fit_with_early_stopping

# task.*.augmentation: the training augmentation of a fine-tune (with augment true), by name.
AUGMENTATIONS = {"crop_jitter": train_transform, "randaugment": RandAugmentCrop}


def label_fraction(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of round(fraction * N) rows (at least 1), drawn with `seed`, then topped up
    with one positive and one negative per class where missing."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"label fraction must be in (0, 1], got {fraction}")
    labels = np.asarray(labels)
    n = len(labels)
    rng = np.random.default_rng([seed, int(round(fraction * 1e6))])
    order = rng.permutation(n)
    chosen = set(order[: max(1, int(round(fraction * n)))].tolist())
    for c in range(labels.shape[1]):
        for value in (1, 0):
            if not any(labels[i, c] == value for i in chosen):
                candidates = [i for i in order if labels[i, c] == value]
                if candidates:
                    chosen.add(int(candidates[0]))
    return np.array(sorted(chosen), dtype=np.int64)


def linear_probe_scores(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, c: float = 1.0, max_iter: int = 2000
) -> np.ndarray:
    """P(positive) N x C from one L2-regularised logistic regression per class on standardised
    features. A class with one label value in the training subset predicts its constant."""
    scaler = StandardScaler().fit(train_x)
    a, b = scaler.transform(train_x), scaler.transform(test_x)
    out = np.zeros((len(test_x), train_y.shape[1]))
    for k in range(train_y.shape[1]):
        y = train_y[:, k]
        if y.min() == y.max():
            out[:, k] = float(y[0])
            continue
        clf = LogisticRegression(C=c, max_iter=max_iter)
        out[:, k] = clf.fit(a, y).predict_proba(b)[:, 1]
    return out


class _LabelledImages(Dataset):
    def __init__(self, split: Split, index: np.ndarray, transform, seed: int):
        self.split, self.index, self.transform, self.seed = split, index, transform, seed
        self.draws = 0

    def __len__(self):
        return len(self.index)

    def __getitem__(self, j):
        i = int(self.index[j])
        img = self.split.load(i)
        if self.transform.draws_randomly:  # the training augmentation takes its own rng
            self.draws += 1
            x = self.transform(img, np.random.default_rng([self.seed, i, self.draws]))
        else:
            x = self.transform(img)
        return x, torch.from_numpy(self.split.labels[i].astype(np.float32))


class Classifier(nn.Module):
    def __init__(self, encoder: nn.Module, n_classes: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.dim, n_classes)

    def forward(self, x):
        return self.head(self.encoder(x))


@dataclass(frozen=True)
class FinetuneSettings:
    """How a fine-tuning run (classification or segmentation) optimises: its task config's keys, and
    the suite's seed (the labelled subset's order, the initial head, the augmentation draws)."""

    optimizer: Callable  # param groups -> a torch optimizer (e.g. functools.partial(torch.optim.AdamW, ...))
    steps: int  # with epochs None: optimiser steps, whatever the label fraction
    epochs: int | None  # passes over the labelled subset (the published protocol)
    batch_size: int
    lr: float  # the trained encoder's (classification) or decoder's (segmentation)
    seed: int
    head_lr: float | None = None  # classification's linear head
    augment: bool = False  # classification: the training augmentation `augmentation` names
    augmentation: str = "crop_jitter"  # a key of AUGMENTATIONS
    image_size: int | None = None  # classification: the side images are resized to; None: the run's
    early_stopping: bool = False  # score the validation split every epoch, keep the best epoch's weights
    patience: int | None = None  # with early_stopping: epochs without improvement before stopping
    freeze_encoder: bool = True  # segmentation: train the decoder only (False: the encoder too)
    normalize: str = "standard"  # pixel values as the encoder was pre-trained (data/transforms.py PIXEL_NORMS)

    @classmethod
    def from_task(cls, tcfg, seed: int, dataset: str | None = None, normalize: str = "standard") -> FinetuneSettings:
        """From task.finetune_cls or task.finetune_seg for `dataset` (its entry of
        batch_size_per_dataset, if any and not null, replaces batch_size); keys a task lacks take the
        defaults."""
        head_lr, patience = tcfg.get("head_lr"), tcfg.get("patience")
        per_dataset = tcfg.get("batch_size_per_dataset") or {}
        augmentation = str(tcfg.get("augmentation", "crop_jitter"))
        if augmentation not in AUGMENTATIONS:
            raise ValueError(f"augmentation must be one of {sorted(AUGMENTATIONS)}, got {augmentation!r}")
        early = bool(tcfg.get("early_stopping", False))
        if early and tcfg.epochs is None:
            raise ValueError("early_stopping needs `epochs` (the most epochs to run), got epochs=null")
        return cls(
            optimizer=instantiate(tcfg.optimizer),
            steps=int(tcfg.steps),
            epochs=tcfg.epochs,
            batch_size=int(per_dataset.get(dataset) or tcfg.batch_size),
            lr=float(tcfg.lr),
            seed=int(seed),
            head_lr=None if head_lr is None else float(head_lr),
            augment=bool(tcfg.get("augment", False)),
            augmentation=augmentation,
            image_size=tcfg.get("image_size"),
            early_stopping=early,
            patience=None if patience is None else int(patience),
            freeze_encoder=bool(tcfg.get("freeze_encoder", True)),
            normalize=str(normalize),
        )


def budget_sampler(data: Dataset, steps: int, epochs: int | None, batch_size: int, seed: int) -> RandomSampler:
    """Samples of a fine-tuning run: `epochs` passes over `data` (a fresh permutation each, the
    published protocol: a smaller label fraction trains fewer steps), or, with `epochs` None, `steps`
    batches drawn with replacement whatever the fraction (fractions then differ only in the labels)."""
    generator = torch.Generator().manual_seed(seed)
    if epochs is not None:
        if epochs < 1:
            raise ValueError(f"fine-tuning epochs must be >= 1 or null, got {epochs}")
        return RandomSampler(data, replacement=False, num_samples=epochs * len(data), generator=generator)
    if steps < 1:
        raise ValueError(f"fine-tuning steps must be >= 1, got {steps}")
    return RandomSampler(data, replacement=True, num_samples=steps * batch_size, generator=generator)


def train_batches(net: nn.Module, loader: DataLoader, loss_fn: Callable, opt, accelerator, desc: str) -> None:
    """One optimiser step per batch (x, target) of `loader` on `loss_fn(net(x), target)`."""
    for x, y in tqdm(loader, desc=desc, leave=False, disable=not accelerator.is_local_main_process):
        x, y = x.to(accelerator.device), y.to(accelerator.device)
        with accelerator.autocast():
            logits = net(x).float()
        loss = loss_fn(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def fit(net: nn.Module, data: Dataset, train_step: Callable, validate: Callable, st: FinetuneSettings):
    """Trains `net` on `data` with `train_step(loader)`: `st.epochs` passes or `st.steps` batches in
    one go, or, with `st.early_stopping`, epoch by epoch with `validate()` after each (the
    EarlyStopping record is returned; None without early stopping)."""
    if not st.early_stopping:
        sampler = budget_sampler(data, st.steps, st.epochs, st.batch_size, st.seed)
        net.train()
        train_step(DataLoader(data, batch_size=st.batch_size, sampler=sampler))
        net.eval()
        return None
    generator = torch.Generator().manual_seed(st.seed)

    def epoch(_: int) -> None:  # a fresh permutation of the labelled subset
        train_step(DataLoader(data, batch_size=st.batch_size, sampler=RandomSampler(data, generator=generator)))

    return fit_with_early_stopping(net, epoch, validate, st.epochs, st.patience)


@torch.no_grad()
def predict(
    net: nn.Module, split: Split, image_size: int, accelerator, batch_size: int, normalize: str = "standard"
) -> np.ndarray:
    """Sigmoid scores N x C of `net` on every image of `split` (resized to `image_size`, pixels as `normalize`)."""
    net.eval()
    loader = DataLoader(
        _LabelledImages(split, np.arange(len(split)), eval_transform(image_size, None, normalize), 0),
        batch_size=batch_size,
    )
    out = []
    for x, _ in loader:
        with accelerator.autocast():
            out.append(torch.sigmoid(net(x.to(accelerator.device)).float()).cpu())
    return torch.cat(out).numpy()


def validation_auc(
    net: nn.Module, val: Split, image_size: int, accelerator, batch_size: int, normalize: str = "standard"
) -> float:
    """Mean AUC of `net` on `val` over the classes with both label values there (the early-stopping
    metric); none such is an error naming the split file."""
    labels = np.asarray(val.labels)
    defined = [c for c in range(labels.shape[1]) if labels[:, c].min() != labels[:, c].max()]
    if not defined:
        raise ValueError(f"{val.source}: early stopping on validation AUC: no class has both label values")
    scores = predict(net, val, image_size, accelerator, batch_size, normalize)
    return float(np.mean([roc_auc_score(labels[:, c], scores[:, c]) for c in defined]))


def finetune_scores(
    image_encoder: nn.Module,
    train: Split,
    index: np.ndarray,
    test: Split,
    image_size: int,
    accelerator,
    settings: FinetuneSettings,
    val: Split | None = None,
) -> tuple[np.ndarray, EarlyStopping | None]:
    """Fine-tunes a copy of `image_encoder` (all its parameters) with a linear head on train[index]
    (BCE) for `settings.epochs` passes or `settings.steps` batches, or, with early stopping, up to
    `settings.epochs` epochs keeping the one of best AUC on `val`; returns sigmoid scores N x C on
    `test` and the early-stopping record (None without)."""
    st = settings
    size = st.image_size or image_size
    if st.early_stopping and val is None:
        raise ValueError(f"{train.source}: early stopping needs a validation split, and there is none")
    torch.manual_seed(st.seed)
    net = Classifier(copy.deepcopy(image_encoder), train.labels.shape[1]).to(accelerator.device)
    tf = (
        AUGMENTATIONS[st.augmentation](size, normalize=st.normalize)
        if st.augment
        else eval_transform(size, None, st.normalize)
    )
    opt = st.optimizer(
        [{"params": net.encoder.parameters(), "lr": st.lr}, {"params": net.head.parameters(), "lr": st.head_lr}]
    )
    record = fit(
        net,
        _LabelledImages(train, index, tf, st.seed),
        lambda loader: train_batches(
            net, loader, F.binary_cross_entropy_with_logits, opt, accelerator, f"fine-tune ({len(index)} labels)"
        ),
        lambda: validation_auc(net, val, size, accelerator, max(st.batch_size, 64), st.normalize),
        st,
    )
    return predict(net, test, size, accelerator, max(st.batch_size, 64), st.normalize), record
