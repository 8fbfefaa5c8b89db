"""One evaluate.py run: load a trained checkpoint, run the chosen downstream tasks on the chosen
benchmarks (phantom twins or real data on disk), write metrics.json, results.md and figures.

Metric keys: `<task>/<dataset>/<metric>` and `<task>/<dataset>/<class>/<metric>`, numbers only.
What is not a number (the protocol, where each threshold came from, skip counts per split file) goes
to `evaluation.json` and the Markdown header.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from omegaconf import DictConfig, OmegaConf

from .. import builders
from ..data.benchmarks import Split, read_split
from ..data.dataset_format import write_json_atomic
from ..data.durable import write_text_atomic
from ..data.transforms import eval_transform
from .checkpoint import load_trained, weights_fingerprint
from .embeddings import EmbeddingCache
from .finetune import finetune_scores, label_fraction, linear_probe_scores
from .grounding import (MAP_MODES, grounding, has_own_similarity, local_similarity, model_similarity_maps,
                        own_similarity, positives, prompt_tokens)
from .metrics import auc_metrics, prefix_metrics
from .report import grounding_figure, markdown_report
from .retrieval import encode_texts, paired_split, retrieval_metrics
from .segmentation import segment_scores, train_segmenter
from .zeroshot import PROTOCOLS, encode_prompts, fill_prompts, prompt_embeddings, score_zeroshot

TASKS = ("zeroshot_cls", "zeroshot_grounding", "linear_probe", "finetune_cls", "finetune_seg", "retrieval")


def fraction_key(fraction: float) -> str:
    return f"{fraction * 100:g}pct"


@dataclass(frozen=True)
class DatasetRef:
    """`bench` or `bench:class_set` as tasks list them; `label` is the dataset part of metric keys."""

    bench: str
    class_set: str | None

    @classmethod
    def parse(cls, text: str) -> "DatasetRef":
        bench, _, class_set = str(text).partition(":")
        return cls(bench, class_set or None)

    @property
    def label(self) -> str:
        return self.bench if self.class_set is None else f"{self.bench}_{self.class_set}"


@dataclass
class Context:
    cfg: DictConfig
    model: torch.nn.Module
    tokenizer: object
    train_cfg: DictConfig
    accelerator: Accelerator
    image_size: int
    cache: EmbeddingCache
    cache_dir: Path
    splits: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    cases: dict = field(default_factory=dict)

    @property
    def transform(self):
        return eval_transform(self.image_size)

    @property
    def protocol(self) -> str:
        return str(self.cfg.protocol)

    @property
    def max_length(self) -> int:
        return int(self.train_cfg.text_encoder.max_length)

    def bench_cfg(self, ref: DatasetRef) -> DictConfig:
        benches = self.cfg.get("benchmark") or {}
        if ref.bench not in benches:
            raise ValueError(f"unknown benchmark {ref.bench!r}: add conf/benchmark/{ref.bench}.yaml to the "
                             f"`benchmark` list; configured: {sorted(benches)}")
        return benches[ref.bench]

    def classes(self, ref: DatasetRef) -> list[str]:
        b = self.bench_cfg(ref)
        if ref.class_set is None:
            return list(b.classes)
        sets = b.get("class_sets") or {}
        if ref.class_set not in sets:
            raise ValueError(f"benchmark.{ref.bench}.class_sets has no {ref.class_set!r}; has {sorted(sets)}")
        return list(sets[ref.class_set])

    def prompt_names(self, ref: DatasetRef) -> list:
        """Per class: the text its prompts use (a name, or a list of names pooled as an ensemble)."""
        names = self.bench_cfg(ref).get("prompt_names") or {}
        out = []
        for c in self.classes(ref):
            n = names.get(c, c.replace("_", " ").lower())
            out.append(str(n) if isinstance(n, str) else [str(x) for x in n])
        return out

    def skip_bad(self, ref: DatasetRef) -> bool:
        return str(self.bench_cfg(ref).get("on_error", "raise")) == "skip"

    def split(self, ref: DatasetRef, which: str, required: bool = True) -> Split | None:
        """Split `which` (train | valid | test) of a benchmark, read once per run."""
        key = (ref, which)
        if key not in self.splits:
            b = self.bench_cfg(ref)
            files = b.get("splits") or {}
            if not files.get(which):
                if required:
                    raise ValueError(f"benchmark.{ref.bench}.splits.{which} is not set; a task needs that split")
                return None
            root = builders.build_benchmark_root(b, self.cache_dir, f"benchmark.{ref.bench}")
            options = b.get("options")
            options = OmegaConf.to_container(options, resolve=True) if options else {}
            s = read_split(str(b.reader), root, str(files[which]), self.classes(ref),
                           on_error=str(b.get("on_error", "raise")), **options)
            if s.skipped:
                self.info.setdefault("skipped", {})[str(s.source)] = s.skipped
            self.splits[key] = s
        return self.splits[key]

    def features(self, ref: DatasetRef, split: Split, kind: str, transform=None):
        return self.cache.features(self.model, split, transform or self.transform, kind, self.accelerator,
                                   int(self.cfg.batch_size), self.skip_bad(ref), int(self.cfg.num_workers))

    def usable(self, ref: DatasetRef, split: Split) -> Split:
        """The split without images that fail to load (only looked for with on_error=skip)."""
        if not self.skip_bad(ref):
            return split
        _, ok = self.features(ref, split, "backbone")
        return split.where(ok)

    def note(self, task: str, ds: str, **kv) -> None:
        self.info.setdefault(task, {}).setdefault(ds, {}).update(kv)




# --------------------------------------------------------------------------- tasks
def task_zeroshot_cls(ctx: Context, tcfg) -> dict[str, float]:
    out = {}
    for text in tcfg.datasets:
        ref = DatasetRef.parse(text)
        classes = ctx.classes(ref)
        test = ctx.split(ref, "test")
        emb, ok = ctx.features(ref, test, "global")
        val_emb = val_labels = None
        if ctx.protocol == "val":
            val = ctx.split(ref, "valid", required=False)
            if val is not None:
                v, vok = ctx.features(ref, val, "global")
                val_emb, val_labels = v[vok], val.labels[vok]
        pos, neg = prompt_embeddings(ctx.model, ctx.tokenizer, ctx.prompt_names(ref), list(tcfg.prompts.positive),
                                     list(tcfg.prompts.negative), ctx.max_length, ctx.accelerator)
        metrics, thresholds, source = score_zeroshot(emb[ok], test.labels[ok], pos, neg, classes, ctx.protocol,
                                                     val_emb, val_labels)
        out.update(prefix_metrics("zeroshot_cls", ref.label, metrics))
        skipped = int((~ok).sum()) + test.skipped  # unreadable + missing images of the test split
        if skipped:
            out[f"zeroshot_cls/{ref.label}/skipped"] = float(skipped)
        ctx.note("zeroshot_cls", ref.label, threshold_source=source,
                 thresholds={c: float(t) for c, t in zip(classes, thresholds)})
    return out


def task_zeroshot_grounding(ctx: Context, tcfg) -> dict[str, float]:
    out = {}
    mode = str(tcfg.get("map", "positive"))
    if mode not in MAP_MODES:
        raise ValueError(f"task.zeroshot_grounding.map must be one of {MAP_MODES}, got {mode!r}")
    input_size = int(tcfg.get("image_size") or ctx.image_size)
    transform = eval_transform(input_size)
    size = int(tcfg.get("mask_size") or input_size)
    for text in tcfg.datasets:
        ref = DatasetRef.parse(text)
        names = ctx.prompt_names(ref)
        if len(names) != 1:
            raise ValueError(f"grounding on {ref.label}: one class expected, got {names}")
        pos_prompts = fill_prompts(names[0], list(tcfg.prompts.positive))
        neg_prompts = fill_prompts(names[0], list(tcfg.prompts.negative))

        def maps_of(split: Split):
            own = has_own_similarity(ctx.model)
            ok = None if own else ctx.features(ref, split, "local", transform)[1]
            pos_split, index = positives(split, ok)
            if own:
                m = model_similarity_maps(ctx.model, pos_split, transform,
                                          prompt_tokens(ctx.tokenizer, pos_prompts, ctx.max_length),
                                          ctx.accelerator, int(ctx.cfg.batch_size))
                if mode == "contrast":
                    m = m - model_similarity_maps(ctx.model, pos_split, transform,
                                                  prompt_tokens(ctx.tokenizer, neg_prompts, ctx.max_length),
                                                  ctx.accelerator, int(ctx.cfg.batch_size))
                return m, pos_split
            local, _ = ctx.features(ref, split, "local", transform)
            text_emb = encode_prompts(ctx.model, ctx.tokenizer, pos_prompts, ctx.max_length, ctx.accelerator)
            m = local_similarity(local[index], text_emb)
            if mode == "contrast":
                neg_emb = encode_prompts(ctx.model, ctx.tokenizer, neg_prompts, ctx.max_length, ctx.accelerator)
                m = m - local_similarity(local[index], neg_emb)
            return m, pos_split

        test_maps, test_pos = maps_of(ctx.split(ref, "test"))
        if not len(test_pos):
            raise ValueError(f"grounding on {ref.label}: the test split has no positive images")
        val_maps = val_pos = None
        if ctx.protocol == "val":
            val = ctx.split(ref, "valid", required=False)
            if val is not None:
                val_maps, val_pos = maps_of(val)
        res = grounding(test_maps, test_pos, val_maps, val_pos, ctx.protocol, size, seed=int(ctx.cfg.seed),
                        n_cases=int(tcfg.get("n_cases", 4)))
        out.update(prefix_metrics("zeroshot_grounding", ref.label, res.metrics))
        ctx.note("zeroshot_grounding", ref.label, threshold_source=res.threshold_source,
                 map_source=own_similarity(ctx.model)[0] if has_own_similarity(ctx.model) else "local features",
                 map_mode=mode, map_shape=list(test_maps.shape[1:]), image_size=input_size)
        ctx.cases[ref.label] = res.cases
    return out


def task_linear_probe(ctx: Context, tcfg) -> dict[str, float]:
    out = {}
    for text in tcfg.datasets:
        ref = DatasetRef.parse(text)
        classes = ctx.classes(ref)
        train, test = ctx.split(ref, "train"), ctx.split(ref, "test")
        ftr, okr = ctx.features(ref, train, "backbone")
        fte, oke = ctx.features(ref, test, "backbone")
        xtr, ytr = ftr[okr].numpy(), train.labels[okr]
        for frac in tcfg.fractions:
            idx = label_fraction(ytr, float(frac), int(ctx.cfg.seed))
            scores = linear_probe_scores(xtr[idx], ytr[idx], fte[oke].numpy(), float(tcfg.get("C", 1.0)))
            out.update(prefix_metrics("linear_probe", ref.label, auc_metrics(test.labels[oke], scores, classes),
                                 f"_{fraction_key(float(frac))}"))
            ctx.note("linear_probe", ref.label, **{f"labels_{fraction_key(float(frac))}": int(len(idx))})
    return out


def task_finetune_cls(ctx: Context, tcfg) -> dict[str, float]:
    out = {}
    for text in tcfg.datasets:
        ref = DatasetRef.parse(text)
        classes = ctx.classes(ref)
        train = ctx.usable(ref, ctx.split(ref, "train"))
        test = ctx.usable(ref, ctx.split(ref, "test"))
        for frac in tcfg.fractions:
            idx = label_fraction(train.labels, float(frac), int(ctx.cfg.seed))
            scores = finetune_scores(ctx.model.image_encoder, train, idx, test, ctx.image_size, ctx.accelerator,
                                     steps=int(tcfg.steps), batch_size=int(tcfg.batch_size), lr=float(tcfg.lr),
                                     head_lr=float(tcfg.head_lr), seed=int(ctx.cfg.seed),
                                     augment=bool(tcfg.get("augment", True)))
            out.update(prefix_metrics("finetune_cls", ref.label, auc_metrics(test.labels, scores, classes),
                                 f"_{fraction_key(float(frac))}"))
            ctx.note("finetune_cls", ref.label, **{f"labels_{fraction_key(float(frac))}": int(len(idx))})
    return out


def task_finetune_seg(ctx: Context, tcfg) -> dict[str, float]:
    out = {}
    for text in tcfg.datasets:
        ref = DatasetRef.parse(text)
        train = ctx.usable(ref, ctx.split(ref, "train"))
        test = ctx.usable(ref, ctx.split(ref, "test"))
        for frac in tcfg.fractions:
            idx = label_fraction(train.labels, float(frac), int(ctx.cfg.seed))
            net = train_segmenter(ctx.model.image_encoder, train, idx, ctx.transform, ctx.image_size, ctx.accelerator,
                                  steps=int(tcfg.steps), batch_size=int(tcfg.batch_size), lr=float(tcfg.lr),
                                  seed=int(ctx.cfg.seed))
            res = segment_scores(net, test, ctx.transform, ctx.image_size, ctx.accelerator)
            out[f"finetune_seg/{ref.label}/n_positive"] = res.pop("n_positive")
            out.update(prefix_metrics("finetune_seg", ref.label, res, f"_{fraction_key(float(frac))}"))
            ctx.note("finetune_seg", ref.label, **{f"labels_{fraction_key(float(frac))}": int(len(idx))})
    return out


def task_retrieval(ctx: Context, tcfg) -> dict[str, float]:
    out = {}
    for name, dcfg in tcfg.datasets.items():
        directory = builders.build_dataset_dir(dcfg.dataset, ctx.cache_dir, f"task.retrieval.datasets.{name}.dataset")
        split, texts = paired_split(directory, dcfg.get("split"), str(dcfg.get("text", "impression")))
        emb, ok = ctx.cache.features(ctx.model, split, ctx.transform, "global", ctx.accelerator,
                                     int(ctx.cfg.batch_size), False, int(ctx.cfg.num_workers))
        txt = encode_texts(ctx.model, ctx.tokenizer, texts, ctx.max_length, ctx.accelerator, int(ctx.cfg.batch_size))
        ks = tuple(int(k) for k in tcfg.get("ks", (1, 5, 10)))
        out.update(prefix_metrics("retrieval", name, retrieval_metrics(emb, txt, ks)))
    return out


TASK_FUNCTIONS = {"zeroshot_cls": task_zeroshot_cls, "zeroshot_grounding": task_zeroshot_grounding,
                  "linear_probe": task_linear_probe, "finetune_cls": task_finetune_cls,
                  "finetune_seg": task_finetune_seg, "retrieval": task_retrieval}


def build_accelerator(precision: str, cpu: bool) -> Accelerator:
    if precision not in ("no", "bf16", "fp16"):
        raise ValueError(f"precision must be no, bf16 or fp16, got {precision!r}")
    cpu = bool(cpu) or not torch.cuda.is_available()
    if precision == "fp16" and cpu:
        raise ValueError("precision=fp16 needs a GPU; use bf16 or no on the CPU")
    return Accelerator(mixed_precision=precision, cpu=cpu)


def run_evaluation(cfg: DictConfig, out_dir: str | Path) -> dict[str, float]:
    """Runs every task of `cfg.task` on checkpoint `cfg.checkpoint`; writes metrics.json (flat),
    evaluation.json (protocol, threshold sources, skips, timings), results.md and grounding.png."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {cfg.protocol!r}")
    tasks = cfg.get("task") or {}
    unknown = [t for t in tasks if t not in TASK_FUNCTIONS]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; choose from {list(TASK_FUNCTIONS)}")
    if not tasks:
        raise ValueError(f"no task selected: task=[...] with any of {list(TASK_FUNCTIONS)}")
    t0 = time.perf_counter()
    torch.manual_seed(int(cfg.seed))
    cache_dir = Path(cfg.paths.cache_dir).expanduser().resolve()
    write_text_atomic(out_dir / "resolved_config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    model, tokenizer, train_cfg = load_trained(cfg.checkpoint, cache_dir)
    accelerator = build_accelerator(str(cfg.precision), bool(cfg.cpu))
    model.to(accelerator.device)
    cache = EmbeddingCache(cfg.get("embedding_cache"), weights_fingerprint(cfg.checkpoint))
    image_size = int(cfg.image_size or train_cfg.loader.image_size)
    ctx = Context(cfg, model, tokenizer, train_cfg, accelerator, image_size, cache, cache_dir)

    metrics: dict[str, float] = {}
    timings = {}
    for name, tcfg in tasks.items():
        t = time.perf_counter()
        metrics.update(TASK_FUNCTIONS[name](ctx, tcfg))
        timings[name] = time.perf_counter() - t

    header = {"checkpoint": str(Path(cfg.checkpoint).expanduser().resolve()),
              "protocol": f"{cfg.protocol} (thresholds: " + (
                  "validation split" if cfg.protocol == "val" else "best on the test split, as published") + ")",
              "image size": image_size, "tasks": ", ".join(tasks),
              "embedding cache": f"{cache.directory} ({cache.hits} hits, {cache.misses} misses)"}
    write_json_atomic(out_dir / "metrics.json", metrics)
    write_json_atomic(out_dir / "evaluation.json", {
        "protocol": str(cfg.protocol), "checkpoint": header["checkpoint"], "image_size": image_size,
        "tasks": list(tasks), "details": {k: v for k, v in ctx.info.items()},
        "cache": {"dir": str(cache.directory), "hits": cache.hits, "misses": cache.misses},
        "timing_s": {**timings, "total": time.perf_counter() - t0}})
    write_text_atomic(out_dir / "results.md", markdown_report(metrics, ctx.info, header))
    if ctx.cases:
        grounding_figure(ctx.cases, out_dir / "grounding.png")
    return metrics


def load_metrics(out_dir: str | Path) -> dict[str, float]:
    return json.loads((Path(out_dir) / "metrics.json").read_text())

