"""The fine-tuning tasks of the evaluation suite: full fine-tuning with a linear head
(finetune_cls) and a U-Net on the pre-trained encoder (finetune_seg), each over label fractions,
with early stopping on the validation split where the task asks for it."""

from __future__ import annotations

import pandas as pd

from ..data.benchmark_split import Split
from .context import Context, DatasetRef
from .finetune import FinetuneSettings, finetune_scores, label_fraction
from .metrics import auc_metrics, prefix_metrics
from .segmentation import segment_scores, train_segmenter
from .task_outputs import fraction_key, per_image_scores


def finetune_val(ctx: Context, ref: DatasetRef, settings: FinetuneSettings, task: str) -> Split | None:
    """The validation split early stopping scores (None without early stopping); its absence is an
    error naming the benchmark and the key."""
    if not settings.early_stopping:
        return None
    val = ctx.split(ref, "valid", required=False)
    if val is None:
        raise ValueError(
            f"task.{task}.early_stopping: benchmark.{ref.bench} has no validation split to stop on; "
            f"give it one or set task.{task}.early_stopping=false"
        )
    return ctx.usable(ref, val)


def note_fit(ctx: Context, task: str, ref: DatasetRef, frac: float, settings: FinetuneSettings, record) -> dict:
    """What a fine-tune ran, noted (labels, epochs, best epoch); the best epoch (1-based) and the
    epochs run also as metrics `<task>/<dataset>/best_epoch_<fraction>` and `.../epochs_run_<fraction>`."""
    if record is None:
        return {}
    key = fraction_key(frac)
    ctx.note(task, ref.label, **{f"best_epoch_{key}": record.best_epoch + 1, f"epochs_run_{key}": record.epochs_run})
    ctx.note(task, ref.label, early_stopping={"patience": settings.patience, "max_epochs": settings.epochs})
    return {
        f"{task}/{ref.label}/best_epoch_{key}": float(record.best_epoch + 1),
        f"{task}/{ref.label}/epochs_run_{key}": float(record.epochs_run),
    }


def task_finetune_cls(ctx: Context, tcfg) -> dict[str, float]:
    out = {}
    for text in tcfg.datasets:
        ref = ctx.ref(text, "classification")
        classes = ctx.classes(ref)
        settings = FinetuneSettings.from_task(tcfg, ctx.settings.seed, ref.bench, ctx.settings.normalize)
        train = ctx.usable(ref, ctx.split(ref, "train"))
        test = ctx.usable(ref, ctx.split(ref, "test"))
        val = finetune_val(ctx, ref, settings, "finetune_cls")
        for frac in tcfg.fractions:
            idx = label_fraction(train.labels, float(frac), ctx.settings.seed)
            scores, record = finetune_scores(
                ctx.model.image_encoder, train, idx, test, ctx.image_size, ctx.accelerator, settings, val
            )
            out.update(
                prefix_metrics(
                    "finetune_cls",
                    ref.label,
                    auc_metrics(test.labels, scores, classes),
                    f"_{fraction_key(float(frac))}",
                )
            )
            out.update(note_fit(ctx, "finetune_cls", ref, float(frac), settings, record))
            ctx.predictions[f"finetune_cls/{ref.label}_{fraction_key(float(frac))}"] = per_image_scores(
                test.ids, classes, test.labels, scores
            )
            ctx.note("finetune_cls", ref.label, **{f"labels_{fraction_key(float(frac))}": int(len(idx))})
    return out


def task_finetune_seg(ctx: Context, tcfg) -> dict[str, float]:
    """Metrics per dataset and fraction, and `finetune_seg/<dataset>/encoder_frozen` (1: the encoder
    stayed as pre-trained, 0: it was fine-tuned with the decoder), so results say which protocol ran."""
    out = {}
    for text in tcfg.datasets:
        ref = ctx.ref(text, "segmentation")
        settings = FinetuneSettings.from_task(tcfg, ctx.settings.seed, ref.bench, ctx.settings.normalize)
        train = ctx.usable(ref, ctx.split(ref, "train"))
        test = ctx.usable(ref, ctx.split(ref, "test"))
        val = finetune_val(ctx, ref, settings, "finetune_seg")
        out[f"finetune_seg/{ref.label}/encoder_frozen"] = float(settings.freeze_encoder)
        ctx.note("finetune_seg", ref.label, encoder_frozen=settings.freeze_encoder, batch_size=settings.batch_size)
        for frac in tcfg.fractions:
            idx = label_fraction(train.labels, float(frac), ctx.settings.seed)
            net, record = train_segmenter(
                ctx.model.image_encoder, train, idx, ctx.transform, ctx.image_size, ctx.accelerator, settings, val
            )
            res, per_image = segment_scores(net, test, ctx.transform, ctx.image_size, ctx.accelerator)
            ctx.predictions[f"finetune_seg/{ref.label}_{fraction_key(float(frac))}"] = pd.DataFrame(per_image)
            out[f"finetune_seg/{ref.label}/n_positive"] = res.pop("n_positive")
            out.update(prefix_metrics("finetune_seg", ref.label, res, f"_{fraction_key(float(frac))}"))
            out.update(note_fit(ctx, "finetune_seg", ref, float(frac), settings, record))
            ctx.note("finetune_seg", ref.label, **{f"labels_{fraction_key(float(frac))}": int(len(idx))})
    return out
