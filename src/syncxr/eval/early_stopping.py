"""Early stopping of a fine-tuning run on its validation metric (AUC for classification, Dice for
segmentation): train an epoch, score the validation split, keep a copy of the best epoch's weights,
stop after `patience` epochs without improvement (None: run every epoch), and end with the best
epoch's weights restored. MAVL's fine-tuning code keeps the weights of the epoch with the best
validation score the same way (its `best_valid.pth`), and scores the test split with them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn


@dataclass
class EarlyStopping:
    """The best validation score so far, its epoch (0-based) and a copy of its weights."""

    patience: int | None  # epochs without improvement before stopping; None: never stop early
    best_score: float = -math.inf
    best_epoch: int = -1
    epochs_run: int = 0
    scores: list[float] = field(default_factory=list)
    best_state: dict | None = None

    def __post_init__(self):
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"early-stopping patience must be >= 1 or null, got {self.patience}")

    def update(self, epoch: int, score: float, net: nn.Module) -> bool:
        """Records `epoch`'s validation score (a NaN never improves); True when training should stop."""
        self.epochs_run = epoch + 1
        self.scores.append(float(score))
        if score > self.best_score:
            self.best_score, self.best_epoch = float(score), epoch
            self.best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        return self.patience is not None and epoch - self.best_epoch >= self.patience

    def restore(self, net: nn.Module) -> None:
        if self.best_state is None:
            raise ValueError(f"no epoch had a finite validation score (scores: {self.scores})")
        net.load_state_dict(self.best_state)


def fit_with_early_stopping(
    net: nn.Module, train_epoch: Callable[[int], None], validate: Callable[[], float], epochs: int, patience: int | None
) -> EarlyStopping:
    """Up to `epochs` rounds of `train_epoch(epoch)` then `validate()` (in eval mode); `net` ends
    with the best epoch's weights, in eval mode."""
    if epochs is None or epochs < 1:
        raise ValueError(f"early stopping needs a number of epochs >= 1, got {epochs}")
    stopper = EarlyStopping(patience)
    for epoch in range(epochs):
        net.train()
        train_epoch(epoch)
        net.eval()
        if stopper.update(epoch, validate(), net):
            break
    stopper.restore(net)
    stopper.best_state = None  # the weights are in `net` now
    return stopper
