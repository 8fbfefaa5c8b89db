"""The downstream tasks of an evaluation suite, each a function (Context, task config) -> metrics.

Metric keys: `<task>/<dataset>/<metric>` and `<task>/<dataset>/<class>/<metric>`, numbers only.
What is not a number (where each threshold came from, skip counts per split file) is noted in
`Context.info` and goes to `evaluation.json` and the Markdown header.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig

from ..config_choices import ATTRIBUTION_MODES, MAP_MODES, REFERENCES
from ..data.benchmark_split import Split
from ..dataset_dirs import build_dataset_dir
from .context import Context, DatasetRef
from .finetune import label_fraction, linear_probe_scores
from .finetune_tasks import task_finetune_cls, task_finetune_seg
from .grounding import (
    combine_prompt_maps,
    gradcam_maps,
    grounding,
    local_similarity,
    minus_reference,
    model_similarity_maps,
    negatives,
    occlusion_maps,
    own_maps_used,
    own_similarity,
    positives,
    prompt_tokens,
)
from .metrics import auc_metrics, prefix_metrics
from .retrieval import encode_texts, paired_split, retrieval_metrics
from .task_outputs import fraction_key, per_image_scores
from .zeroshot import encode_prompts, fill_prompts, name_spans, prompt_embeddings, prompt_scores, score_zeroshot

TASKS = ("zeroshot_cls", "zeroshot_grounding", "linear_probe", "finetune_cls", "finetune_seg", "retrieval")


def zeroshot_transform(ctx: Context, tcfg):
    """Zero-shot classification's input: straight to the run's image side (resize null), or resized
    to `resize` x `resize` and centre-cropped to `center_crop` (null: the run's image side)."""
    resize, crop = tcfg.get("resize"), tcfg.get("center_crop")
    if resize is None:
        if crop is not None:
            raise ValueError("task.zeroshot_cls.center_crop needs task.zeroshot_cls.resize (the side it is cut from)")
        return ctx.transform
    size = int(crop or ctx.image_size)
    if int(resize) < size:
        raise ValueError(f"task.zeroshot_cls.resize={resize} is smaller than the {size} px centre crop")
    return ctx.input_transform(size, int(resize))


# --------------------------------------------------------------------------- tasks
def task_zeroshot_cls(ctx: Context, tcfg) -> dict[str, float]:
    out = {}
    transform = zeroshot_transform(ctx, tcfg)
    for text in tcfg.datasets:
        ref = ctx.ref(text, "classification")
        classes = ctx.classes(ref)
        test = ctx.split(ref, "test")
        emb, ok = ctx.features(ref, test, "global", transform)
        val_emb = val_labels = None
        if ctx.protocol == "val":
            val = ctx.split(ref, "valid", required=False)
            if val is not None:
                v, vok = ctx.features(ref, val, "global", transform)
                val_emb, val_labels = v[vok], val.labels[vok]
        pos, neg = prompt_embeddings(
            ctx.model,
            ctx.tokenizer,
            ctx.prompt_names(ref),
            list(tcfg.prompts.positive),
            list(tcfg.prompts.negative),
            ctx.max_length,
            ctx.accelerator,
        )
        metrics, thresholds, source = score_zeroshot(
            emb[ok], test.labels[ok], pos, neg, classes, ctx.protocol, val_emb, val_labels
        )
        out.update(prefix_metrics("zeroshot_cls", ref.label, metrics))
        ctx.predictions[f"zeroshot_cls/{ref.label}"] = per_image_scores(
            [test.ids[i] for i in np.flatnonzero(ok)], classes, test.labels[ok], prompt_scores(emb[ok], pos, neg)
        )
        skipped = int((~ok).sum()) + test.skipped  # unreadable + missing images of the test split
        if skipped:
            out[f"zeroshot_cls/{ref.label}/skipped"] = float(skipped)
        ctx.note(
            "zeroshot_cls",
            ref.label,
            threshold_source=source,
            thresholds={c: float(t) for c, t in zip(classes, thresholds)},
            input=f"resize {transform.resize or transform.size}, crop {transform.size}, pixels {transform.normalize}",
        )
    return out


def grounding_upscale(value, mode: str, own_similarity: bool) -> float:
    """The factor from the run's image side to the grounding input side. "auto": 2 for region-text
    cosine maps of the last ResNet stage (3 x 3 at 96 px, too coarse for the twins' targets), 1 for
    maps a stage earlier or from the input (a model's own maps such as GLoRIA's third stage, Grad-CAM
    at its default layer3, occlusion), whose grid is already 6 x 6 or finer at the training size."""
    if value is None or str(value) == "auto":
        return 1.0 if own_similarity or mode in ATTRIBUTION_MODES else 2.0
    try:
        upscale = float(value)
    except ValueError:
        upscale = 0.0
    if upscale <= 0:
        raise ValueError(f"task.zeroshot_grounding.upscale must be 'auto' or a number > 0, got {value!r}")
    return upscale


@dataclass(frozen=True)
class GroundingPrompts:
    """A class's positive and negative grounding prompts, and where its name is in each."""

    positive: list[str]
    negative: list[str]
    positive_spans: list
    negative_spans: list
    ensemble: str = "mean"  # how each list's maps combine (grounding.ENSEMBLES)

    @classmethod
    def of(cls, name: str, prompts) -> GroundingPrompts:
        pos, neg = list(prompts.positive), list(prompts.negative)
        spans = name_spans(name, pos), name_spans(name, neg)
        return cls(fill_prompts(name, pos), fill_prompts(name, neg), *spans, str(prompts.get("ensemble", "mean")))


@dataclass(frozen=True)
class GroundingMaps:
    """Text-to-region maps of a split's positive images, as task.zeroshot_grounding.map asks."""

    ctx: Context
    ref: DatasetRef
    tcfg: DictConfig
    transform: object
    prompts: GroundingPrompts

    def _encode(self, prompts: list[str]) -> torch.Tensor:
        ctx = self.ctx
        return encode_prompts(ctx.model, ctx.tokenizer, prompts, ctx.max_length, ctx.accelerator)

    def of(self, split: Split, select=positives):
        """(maps N x h x w, the split of the N images `select` keeps: the positives, or `negatives`)."""
        ctx, mode, p = self.ctx, str(self.tcfg.map), self.prompts
        if mode in ATTRIBUTION_MODES:
            # One score per image, against the prompts' mean embedding, whatever the ensemble.
            kept, _ = select(split)
            pos_emb, neg_emb = self._encode(p.positive), self._encode(p.negative)
            if mode == "occlusion":
                return occlusion_maps(
                    ctx.model,
                    kept,
                    self.transform,
                    pos_emb,
                    neg_emb,
                    ctx.accelerator,
                    int(self.tcfg.occlusion_grid),
                    ctx.settings.batch_size,
                ), kept
            return gradcam_maps(
                ctx.model,
                kept,
                self.transform,
                pos_emb,
                neg_emb,
                ctx.accelerator,
                str(self.tcfg.gradcam_layer),
                ctx.settings.batch_size,
            ), kept
        own = own_maps_used(ctx.model, mode)
        ok = None if own else ctx.features(self.ref, split, "local", self.transform)[1]
        kept, index = select(split, ok)
        if own:
            m = self._own_maps(kept, p.positive, p.positive_spans)
            if mode == "contrast":
                m = m - self._own_maps(kept, p.negative, p.negative_spans)
            return m, kept
        local, _ = ctx.features(self.ref, split, "local", self.transform)
        m = self._local_maps(local[index], p.positive)
        if mode == "contrast":
            m = m - self._local_maps(local[index], p.negative)
        return m, kept

    def _local_maps(self, local: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """Cosine maps of local features with the prompts: with their mean embedding, or each
        prompt's map combined as the ensemble says."""
        if self.prompts.ensemble == "mean":
            return local_similarity(local, self._encode(prompts))
        return combine_prompt_maps(
            torch.stack([local_similarity(local, self._encode([q])) for q in prompts]), self.prompts.ensemble
        )

    def _own_maps(self, split: Split, prompts: list[str], spans) -> torch.Tensor:
        ctx = self.ctx
        return model_similarity_maps(
            ctx.model,
            split,
            self.transform,
            prompt_tokens(ctx.tokenizer, prompts, ctx.max_length, spans),
            ctx.accelerator,
            ctx.settings.batch_size,
            self.prompts.ensemble,
        )


def grounding_prompts_note(prompts: GroundingPrompts, mode: str) -> str:
    """How a map of `mode` used the prompts, for evaluation.json."""
    if mode in ATTRIBUTION_MODES:  # scored against the mean embedding, whatever the ensemble
        return f"mean embedding of {prompts.positive} against that of {prompts.negative}"
    drawn = f"{prompts.ensemble} over {prompts.positive}"
    return f"{drawn} less {prompts.ensemble} over {prompts.negative}" if mode == "contrast" else drawn


def normal_reference(ctx: Context, ref: DatasetRef, maps: GroundingMaps, reference: str) -> torch.Tensor | None:
    """The h x w map that `reference` (REFERENCES) subtracts from every map of `ref`: for "normal",
    the mean map of the validation split's images without the finding (no test image is used).
    None for "none", and for a dataset none of whose validation images is without the finding
    (COVID Rural: every image is positive), whose maps stay as drawn."""
    if reference not in REFERENCES:
        raise ValueError(f"task.zeroshot_grounding.reference must be one of {REFERENCES}, got {reference!r}")
    val = ctx.split(ref, "valid", required=False) if reference == "normal" else None
    if val is None or not len(negatives(val)[1]):
        return None
    normal, _ = maps.of(val, negatives)
    return normal.mean(0)


def task_zeroshot_grounding(ctx: Context, tcfg) -> dict[str, float]:
    out = {}
    mode = str(tcfg.map)
    if mode not in MAP_MODES:
        raise ValueError(f"task.zeroshot_grounding.map must be one of {MAP_MODES}, got {mode!r}")
    own = own_maps_used(ctx.model, mode)
    upscale = grounding_upscale(tcfg.get("upscale"), mode, own)
    input_size = int(tcfg.image_size or round(upscale * ctx.image_size))
    transform = ctx.input_transform(input_size)
    size = int(tcfg.mask_size or input_size)
    for text in tcfg.datasets:
        ref = ctx.ref(text, "grounding")
        names = ctx.prompt_names(ref)
        if len(names) != 1:
            raise ValueError(f"grounding on {ref.label}: one class expected, got {names}")
        prompts = GroundingPrompts.of(names[0], tcfg.prompts)
        maps = GroundingMaps(ctx, ref, tcfg, transform, prompts)
        normal = normal_reference(ctx, ref, maps, str(tcfg.get("reference", "none")))
        test_maps, test_pos = maps.of(ctx.split(ref, "test"))
        if not len(test_pos):
            raise ValueError(f"grounding on {ref.label}: the test split has no positive images")
        test_maps = minus_reference(test_maps, normal)
        val_maps = val_pos = None
        if ctx.protocol == "val":
            val = ctx.split(ref, "valid", required=False)
            if val is not None:
                val_maps, val_pos = maps.of(val)
                val_maps = minus_reference(val_maps, normal)
        res = grounding(
            test_maps,
            test_pos,
            val_maps,
            val_pos,
            ctx.protocol,
            size,
            seed=ctx.settings.seed,
            n_cases=int(tcfg.n_cases),
        )
        out.update(prefix_metrics("zeroshot_grounding", ref.label, res.metrics))
        ctx.predictions[f"zeroshot_grounding/{ref.label}"] = pd.DataFrame({"id": test_pos.ids, **res.per_image})
        ctx.note(
            "zeroshot_grounding",
            ref.label,
            threshold_source=res.threshold_source,
            map_source="occlusion of the image embedding"
            if mode == "occlusion"
            else f"grad-cam of the image embedding at {tcfg.gradcam_layer}"
            if mode == "gradcam"
            else own_similarity(ctx.model)[0]
            if own
            else "the final convolutional layer's features, projected per location",
            map_mode=mode,
            prompts=grounding_prompts_note(prompts, mode),
            reference="none" if normal is None else "normal: the mean map of the validation images without it",
            map_shape=list(test_maps.shape[1:]),
            image_size=input_size,
        )
        ctx.cases[ref.label] = res.cases
    return out


def task_linear_probe(ctx: Context, tcfg) -> dict[str, float]:
    out = {}
    for text in tcfg.datasets:
        ref = ctx.ref(text, "classification")
        classes = ctx.classes(ref)
        train, test = ctx.split(ref, "train"), ctx.split(ref, "test")
        ftr, okr = ctx.features(ref, train, "backbone")
        fte, oke = ctx.features(ref, test, "backbone")
        xtr, ytr = ftr[okr].numpy(), train.labels[okr]
        for frac in tcfg.fractions:
            idx = label_fraction(ytr, float(frac), ctx.settings.seed)
            scores = linear_probe_scores(xtr[idx], ytr[idx], fte[oke].numpy(), float(tcfg.C))
            out.update(
                prefix_metrics(
                    "linear_probe",
                    ref.label,
                    auc_metrics(test.labels[oke], scores, classes),
                    f"_{fraction_key(float(frac))}",
                )
            )
            ctx.note("linear_probe", ref.label, **{f"labels_{fraction_key(float(frac))}": int(len(idx))})
    return out


def task_retrieval(ctx: Context, tcfg) -> dict[str, float]:
    out = {}
    for name, dcfg in tcfg.datasets.items():
        directory = build_dataset_dir(dcfg.dataset, ctx.cache_dir, f"task.retrieval.datasets.{name}.dataset")
        split, texts = paired_split(directory, dcfg.split, str(dcfg.text))
        emb, ok = ctx.cache.features(
            ctx.model,
            split,
            ctx.transform,
            "global",
            ctx.accelerator,
            ctx.settings.batch_size,
            False,
            ctx.settings.num_workers,
        )
        txt = encode_texts(ctx.model, ctx.tokenizer, texts, ctx.max_length, ctx.accelerator, ctx.settings.batch_size)
        ks = tuple(int(k) for k in tcfg.ks)
        out.update(prefix_metrics("retrieval", name, retrieval_metrics(emb, txt, ks)))
    return out


TASK_FUNCTIONS = {
    "zeroshot_cls": task_zeroshot_cls,
    "zeroshot_grounding": task_zeroshot_grounding,
    "linear_probe": task_linear_probe,
    "finetune_cls": task_finetune_cls,
    "finetune_seg": task_finetune_seg,
    "retrieval": task_retrieval,
}
