"""Every numeric and choice key of the entry points' configs checked where the config enters, before
anything is built: a bad override (`trainer.max_steps=0`, `seed=-1`, `until=nothing`,
`generation.n_samples=abc`) is refused in one line naming the key and its allowed values, instead of
running on (an untrained model evaluated, a dataset with no findings) or failing deep in a library.

One declarative table (RULES: key pattern -> rule) rather than structured-config dataclasses: the
configs are composed from ~30 groups whose choices carry different keys (an OpenAI-compatible LLM has
`timeout_s`, the template one `error_rate`) and the same section is mounted at several places (`llm`,
`generation.llm`, `data.syn.generation.llm`), which a pattern covers once; a schema would have to
mirror every group file and fight Hydra's merge of free-form sections. tests/test_config_validation.py
asserts that every numeric or boolean leaf of every shipped config has a rule, so a key added later
without one fails CI."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from omegaconf import DictConfig, ListConfig, OmegaConf

from .config import SECRET_KEY, ConfigError, secret_error
from .config_choices import (
    ANALYSES,
    AUGMENTATION_NAMES,
    DROP_RULES,
    ENSEMBLES,
    IMAGE_FORMATS,
    LAYER_AGGS,
    MAP_MODES,
    MONITORS,
    ON_ERROR,
    PIXEL_NORM_NAMES,
    POOLS,
    PRECISIONS,
    PROTOCOLS,
    REFERENCES,
    RLE_MODES,
    TEXT_FIELDS,
    TEXT_MODES,
)

MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit
UNTIL_STAGES = ("vocab", "plan", "all")  # generate.py until=: the stage to stop after


@dataclass(frozen=True)
class Int:
    lo: int
    hi: int | None = None
    null: bool = False

    def allowed(self) -> str:
        text = f"an integer in [{self.lo}, {self.hi}]" if self.hi is not None else f"an integer >= {self.lo}"
        return text + (" or null" if self.null else "")

    def accepts(self, v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= self.lo and (self.hi is None or v <= self.hi)


@dataclass(frozen=True)
class Real:
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False  # (lo, ...: lo itself is refused
    hi_open: bool = False
    null: bool = False

    def allowed(self) -> str:
        if self.lo is not None and self.hi is not None:
            text = f"a number in {'(' if self.lo_open else '['}{self.lo}, {self.hi}{')' if self.hi_open else ']'}"
        elif self.lo is not None:
            text = f"a number {'>' if self.lo_open else '>='} {self.lo}"
        else:
            text = "a number"
        return text + (" or null" if self.null else "")

    def accepts(self, v) -> bool:
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            return False
        above = self.lo is None or (v > self.lo if self.lo_open else v >= self.lo)
        below = self.hi is None or (v < self.hi if self.hi_open else v <= self.hi)
        return above and below


@dataclass(frozen=True)
class OneOf:
    choices: tuple
    null: bool = False

    def allowed(self) -> str:
        return "one of " + " | ".join(map(str, self.choices)) + (" | null" if self.null else "")

    def accepts(self, v) -> bool:
        return isinstance(v, str) and v in self.choices


@dataclass(frozen=True)
class Bool:
    null: bool = False

    def allowed(self) -> str:
        return "true or false"

    def accepts(self, v) -> bool:
        return isinstance(v, bool)


@dataclass(frozen=True)
class AutoOr:
    """The word `auto` or a value of `rule`."""

    rule: Int | Real
    null: bool = False

    def allowed(self) -> str:
        return f"auto or {self.rule.allowed()}" + (" or null" if self.null else "")

    def accepts(self, v) -> bool:
        return v == "auto" or self.rule.accepts(v)


COUNT, SIZE, SEED = Int(1), Int(1), Int(0, MAX_SEED)
RATE = Real(0, 1)  # a probability or fraction, ends included
POSITIVE = Real(0, lo_open=True)
NONNEG = Real(0)

# Key pattern -> rule; the first pattern that matches a key's full dotted path decides. `*` is one
# path component (a list item's is its index), a leading `**.` any number of them (none included),
# a trailing `.**` one or more:
# `**.llm.temperature` is llm.temperature, generation.llm.temperature and data.syn.generation.llm....
RULES = {
    # Run-level keys (train.py, generate.py, evaluate.py, analyze.py roots).
    "seed": SEED,
    "dry_run": Bool(),
    "paper.reuse_published_real": Bool(),
    "paper_mode": Bool(),
    "progress": Bool(),
    "compare_generated": Bool(),
    "cpu": Bool(),
    "workers": COUNT,
    "worker": Int(0, null=True),
    "until": OneOf(UNTIL_STAGES),
    "protocol": OneOf(PROTOCOLS),
    "precision": OneOf(PRECISIONS),
    "image_size": Int(1, null=True),
    "num_workers": Int(0),
    "analyses.*": OneOf(ANALYSES),
    "phantom.n": COUNT,
    "figure4.max_rows": Int(2, null=True),  # a PCA needs two rows
    "figure4.bins": COUNT,
    "figure4.batch_size": COUNT,
    "report_features.max_features": COUNT,
    "report_features.min_df": COUNT,
    "report_features.max_length": COUNT,
    "phantom.image_size": SIZE,
    # Training.
    "loader.image_size": SIZE,
    "loader.text_mode": OneOf(TEXT_MODES),
    "loader.batch_size": COUNT,
    "loader.num_workers": Int(0),
    "loader.crop_scale": Real(0, 1, lo_open=True),
    "loader.jitter": RATE,
    "loader.normalize": OneOf(PIXEL_NORM_NAMES),
    "data.on_error": OneOf(ON_ERROR),
    "data.allow_external_images": Bool(),
    "data.curate_real": Bool(),
    "data.syn_fraction": Real(0, 1, null=True),
    "trainer.max_epochs": COUNT,
    "trainer.max_steps": Int(1, null=True),
    "trainer.precision": OneOf(PRECISIONS),
    "trainer.cpu": Bool(),
    "trainer.sync_batchnorm": Bool(),
    "trainer.resume": Bool(),
    "trainer.grad_clip": Real(0, lo_open=True, null=True),
    "trainer.checkpoint_every": Int(0),
    "trainer.keep_checkpoints": COUNT,
    "trainer.log_every": COUNT,
    "trainer.val_every": Int(0),
    "trainer.monitor": OneOf(MONITORS),
    "trainer.early_stopping_patience": Int(1, null=True),
    "trainer.early_stopping_min_delta": NONNEG,
    "trainer.restore_best": Bool(),
    "evaluation.protocol": OneOf(PROTOCOLS),
    "evaluation.batch_size": COUNT,
    "evaluation.num_workers": Int(0),
    "evaluation.image_size": Int(1, null=True),
    "evaluation.embedding_cache": Bool(),
    "**.optimizer.lr": POSITIVE,
    "**.optimizer.weight_decay": NONNEG,
    "**.optimizer.betas.*": Real(0, 1, hi_open=True),
    "**.optimizer._partial_": Bool(),
    "scheduler.num_warmup_steps": Int(0),
    "scheduler.factor": Real(0, 1, lo_open=True, hi_open=True),
    "scheduler.patience": Int(0),
    "scheduler.mode": OneOf(("min", "max")),
    "scheduler._partial_": Bool(),
    # Models and encoders.
    "model.proj_dim": COUNT,
    "model.proj_hidden": Int(1, null=True),
    "model.tau": POSITIVE,
    "model.lam": RATE,
    "model.embed_dim": Int(1, null=True),
    "model.image_size_model": Int(1, null=True),
    "model.last_n_layers": COUNT,
    "model.layer_agg": OneOf(LAYER_AGGS),
    "model.temp1": POSITIVE,
    "model.temp2": POSITIVE,
    "model.temp3": POSITIVE,
    "model.local_weight": NONNEG,
    "model.global_weight": NONNEG,
    "model.divide_by_temp2": Bool(),
    "image_encoder.width": Int(1, null=True),
    "image_encoder.image_size": Int(1, null=True),
    "image_encoder.random_init": Bool(),
    "text_encoder.pool": OneOf(POOLS),
    "text_encoder.freeze_layers": Int(0),
    "text_encoder.max_length": COUNT,
    "text_encoder.phantom.*": COUNT,
    # Generation (mounted at generation, data.syn.generation, real_corpus.generation) and its backends.
    "**.generation.n_samples": COUNT,
    "**.generation.entity_ratio": Real(0, 1, lo_open=True),
    "**.generation.val_fraction": Real(0, 1, hi_open=True),
    "**.max_report_attempts": COUNT,
    "**.max_image_attempts": COUNT,
    "**.max_attempts": COUNT,
    "**.shard_size": COUNT,
    "**.sampling.k": COUNT,  # finding entities per report: 0 would make reports that name no finding
    "**.sampling.m": Int(0),
    "**.sampling.tau_max": Int(1, null=True),
    "**.sampling.tau_max_slack": Real(1),
    "**.llm.error_rate": RATE,
    "**.llm.dtype": OneOf(("auto", "bfloat16", "float16", "float32")),
    "**.ner.spec.epochs": Int(0),  # the learned phantom NER (conf/ner/phantom_ner.yaml); 0: untrained
    "**.ner.spec.lr": POSITIVE,
    "**.ner.spec.unk_rate": RATE,
    "**.ner.spec.seed": SEED,
    "**.ner.spec.*": COUNT,  # its sizes
    "**.llm.lm.lr": POSITIVE,  # the learned report LMs' training (llm=phantom_lm_*)
    "**.llm.lm.weight_decay": NONNEG,
    "**.llm.lm.warmup_steps": Int(0),
    "**.llm.lm.seed": SEED,
    "**.llm.lm.request_pairs": Int(0),
    "**.llm.lm.*": COUNT,  # sizes and steps
    "**.imagegen.guidance_scale": NONNEG,
    "**.imagegen.num_inference_steps": COUNT,
    "**.imagegen.fp16": Bool(),
    "**.imagegen.height": Int(1, null=True),
    "**.imagegen.width": Int(1, null=True),
    "**.imagegen.sampling.do_sample": Bool(),  # LLM-CXR's release sampling (imagegen/llm_cxr.yaml)
    "**.imagegen.sampling.top_k": Int(0),
    # The learned phantom text-to-image model's training config (imagegen/phantom_diffusion.yaml).
    "**.imagegen.model.channels.*": COUNT,
    "**.imagegen.model.cross_attention_levels": COUNT,
    "**.imagegen.model.text_hidden": COUNT,
    "**.imagegen.model.text_layers": COUNT,
    "**.imagegen.model.vocab_size": COUNT,
    "**.imagegen.model.steps": COUNT,
    "**.imagegen.model.lr": POSITIVE,
    "**.imagegen.model.uncond_prob": Real(0, 1, hi_open=True),
    "**.i2r.false_positive_rate": RATE,
    "**.i2r.miss_rate": RATE,
    "**.i2r.negation_rate": RATE,
    "**.i2r.sampling.num_beams": COUNT,  # MedVersa's release sampling (i2r/medversa.yaml)
    "**.i2r.sampling.do_sample": Bool(),
    "**.i2r.sampling.min_length": Int(0),
    "**.i2r.sampling.repetition_penalty": POSITIVE,
    "**.i2r.sampling.length_penalty": Real(),
    # OpenAI-compatible clients and in-process generators (llm, the curation judge, i2r).
    "**.concurrency": COUNT,
    "**.timeout_s": POSITIVE,
    "**.max_retries": Int(0),
    "**.backoff_s": NONNEG,
    "**.max_tokens": COUNT,
    "**.max_new_tokens": COUNT,
    "**.temperature": NONNEG,
    "**.top_p": Real(0, 1, lo_open=True),
    "**.curation.delta": Real(-1, 1),
    "**.curation.real.delta": Real(-1, 1),  # cosine similarities
    "**.drop_if_no": OneOf(DROP_RULES),
    # Dataset and corpus specs (corpus, real_corpus, data.real, data.syn, retrieval sets).
    "**.low_quality_rate": RATE,
    "**.wrong_view_rate": RATE,
    "**.unpaired_rate": RATE,
    "**.workers": COUNT,
    "**.image_format": OneOf(IMAGE_FORMATS),
    # A real corpus may be MIMIC-CXR, whose image_size null keeps the original size.
    "**.corpus.image_size": Int(1, null=True),
    "**.real_corpus.image_size": Int(1, null=True),
    "**.real.image_size": Int(1, null=True),
    # Benchmarks.
    "benchmark.*.on_error": OneOf(ON_ERROR),
    "benchmark.*.options.rle": OneOf(RLE_MODES),
    "benchmark.*.allow_external_images": Bool(),
    "**.allow_external_files": Bool(),
    "**.phantom_world": Bool(),
    "benchmark.*.options.box_frame": SIZE,
    "benchmark.*.twin.n_train": Int(0),
    "benchmark.*.twin.n_valid": Int(0),
    "benchmark.*.twin.n_test": COUNT,
    "benchmark.*.twin.prevalence": Real(0, 1, lo_open=True, hi_open=True),
    "benchmark.*.twin.prevalence_rare": Real(0, 1, lo_open=True, hi_open=True),
    "benchmark.*.published.class_sets.*.min_test_positives": Int(0),
    "benchmark.*.published.class_sets.*.max_test_positives": Int(0),
    # Evaluation tasks.
    "task.*.fractions.*": Real(0, 1, lo_open=True),
    "task.*.epochs": Int(1, null=True),
    "task.*.steps": COUNT,
    "task.*.lr": POSITIVE,
    "task.*.head_lr": POSITIVE,
    "task.*.augment": Bool(),
    "task.*.augmentation": OneOf(AUGMENTATION_NAMES),
    "task.*.image_size": Int(1, null=True),
    "task.*.early_stopping": Bool(),
    "task.*.patience": Int(1, null=True),
    "task.*.freeze_encoder": Bool(),
    "task.*.batch_size_per_dataset.*": Int(1, null=True),
    "task.linear_probe.C": POSITIVE,
    "task.retrieval.ks.*": COUNT,
    "task.retrieval.datasets.*.split": OneOf(("train", "val"), null=True),
    "task.retrieval.datasets.*.text": OneOf(TEXT_FIELDS),
    "task.zeroshot_cls.resize": Int(1, null=True),
    "task.zeroshot_cls.center_crop": Int(1, null=True),
    "task.zeroshot_grounding.map": OneOf(MAP_MODES),
    "task.zeroshot_grounding.occlusion_grid": COUNT,
    "task.zeroshot_grounding.reference": OneOf(REFERENCES),
    "task.zeroshot_grounding.prompts.ensemble": OneOf(ENSEMBLES),
    "task.zeroshot_grounding.gradcam_layer": OneOf(("layer1", "layer2", "layer3", "layer4")),
    "task.zeroshot_grounding.image_size": Int(1, null=True),
    "task.zeroshot_grounding.mask_size": Int(1, null=True),
    "task.zeroshot_grounding.upscale": AutoOr(POSITIVE, null=True),
    "task.zeroshot_grounding.n_cases": Int(0),
    "logger.mode": OneOf(("online", "offline", "disabled"), null=True),
    # GPU-hour prices (cost/default.yaml).
    "cost.unknown_dataset_rows": Int(0, null=True),
    "cost.**": NONNEG,
    # Last: every other seed, count and size of a section mounted anywhere.
    "**.seed": SEED,
    "**.n": COUNT,
    "**.image_size": SIZE,
    "**.batch_size": COUNT,
}


def _pattern(key: str) -> re.Pattern:
    regex = re.escape(key).replace(r"\*\*\.", r"(?:[^.]+\.)*").replace(r"\.\*\*", r"(?:\.[^.]+)+")
    return re.compile(regex.replace(r"\*", r"[^.]+"))


_COMPILED = [(_pattern(key), rule) for key, rule in RULES.items()]
UNCHECKED = object()  # a section, an interpolation or ???


def rule_for(path: str):
    """The rule of the key at dotted `path`, or None (strings such as paths and names have none)."""
    return next((rule for pattern, rule in _COMPILED if pattern.fullmatch(path)), None)


def _entries(node, path: str = ""):
    """(dotted path, value) of every key below `node`; the value is UNCHECKED for a section, an
    interpolation (its value is checked where it is defined) and ??? (which Hydra refuses itself)."""
    for key in list(node.keys()) if isinstance(node, DictConfig) else range(len(node)):
        sub, child = f"{path}.{key}" if path else str(key), node._get_node(key)
        if OmegaConf.is_interpolation(node, key) or OmegaConf.is_missing(node, key):
            yield sub, UNCHECKED
        elif isinstance(child, (DictConfig, ListConfig)):
            yield sub, UNCHECKED
            if not child._is_none():
                yield from _entries(child, sub)
        else:
            yield sub, child._value()


def config_errors(cfg: DictConfig) -> list[str]:
    """One message per key of `cfg` whose value its rule refuses, or whose name is a secret's."""
    errors = []
    for path, value in _entries(cfg):
        if SECRET_KEY.fullmatch(path.rsplit(".", 1)[-1]):
            errors.append(secret_error(path))
            continue
        rule = None if value is UNCHECKED else rule_for(path)
        if rule is None or (value is None and rule.null) or rule.accepts(value):
            continue
        errors.append(f"{path}={value!r}: must be {rule.allowed()}")
    return errors


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError (one line, every refused key) if any value of `cfg` is out of its range."""
    errors = config_errors(cfg)
    if errors:
        raise ConfigError("invalid config: " + "; ".join(errors))
