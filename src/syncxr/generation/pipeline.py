"""Resumable, config-addressed generation of a synthetic image-report dataset.

Stages, each written atomically into the dataset directory and skipped when already there:
  vocab.parquet  entity vocabulary of the report corpus (+ long-tail plot)
  plan.parquet   the sampled entities of every sample (balanced or long-tailed)
  shards/        reports, images and curation, `shard_size` samples at a time
  manifest.parquet + dataset.json   the finished dataset (written last)
Every random choice is seeded from (seed, sample index, attempt), so a run killed anywhere and
started again produces exactly the dataset an uninterrupted run would.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from ..data.dataset_format import INFO, MANIFEST, config_hash, write_json_atomic, write_parquet_atomic
from ..entities.sampling import balanced_draws, longtail_draws, subset_vocabulary, tau_max_for
from ..entities.vocabulary import build_vocabulary, frequency_stats, plot_long_tail
from ..images.phantom_t2i import findings_from_entities
from ..phantom.corpus import PHANTOM_VERSION, finding_stats
from ..phantom.vocabulary import ANATOMY, ENTITY_TYPES
from ..reports.loop import write_reports

# Keys of a generation config that do not change the data (so not part of its address).
RUNTIME_KEYS = ("output_dir", "progress")


def uses_phantom_world(gen: dict) -> bool:
    """Whether any part of a generation config is drawn by the phantom world (its report writer,
    renderer, lexicon or corpus), so that a new world version must not reuse the cached dataset."""
    part = lambda k, field: isinstance(gen.get(k), dict) and gen[k].get(field)  # noqa: E731
    return (part("llm", "backend") == "template" or part("imagegen", "backend") in ("phantom", "randomized")
            or part("ner", "name") == "lexicon" or part("corpus", "builder") == "phantom")


def generation_hash(gen: dict) -> str:
    data = {k: v for k, v in gen.items() if k not in RUNTIME_KEYS}
    if uses_phantom_world(gen):
        data["phantom_world"] = PHANTOM_VERSION
    return config_hash(data)


@dataclass
class GenerationSettings:
    n_samples: int = 2000
    seed: int = 0
    entity_ratio: float = 1.0
    sampling: str = "balanced"  # balanced | longtail
    k: int = 3  # entities per sample from the four finding types
    m: int = 2  # entities per sample from ANATOMY
    tau_max: int | None = None  # per-entity cap; None: balanced count x tau_max_slack
    tau_max_slack: float = 1.5
    shard_size: int = 250
    max_report_attempts: int = 5
    max_image_attempts: int = 3
    val_fraction: float = 0.05

    def __post_init__(self):
        if self.n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {self.n_samples}")
        if self.sampling not in ("balanced", "longtail"):
            raise ValueError(f"sampling must be 'balanced' or 'longtail', got {self.sampling!r}")
        if not 0.0 < self.entity_ratio <= 1.0:
            raise ValueError(f"entity_ratio must be in (0, 1], got {self.entity_ratio}")
        if self.shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {self.shard_size}")


def _sample_id(seed: int, i: int) -> str:
    return f"syn-{seed}-{i:07d}"


def make_plan(vocab: pd.DataFrame, s: GenerationSettings) -> pd.DataFrame:
    v = subset_vocabulary(vocab, s.entity_ratio, s.seed)
    rng = np.random.default_rng([s.seed, 23])
    if s.sampling == "balanced":
        n_findings = int((v["type"] != ANATOMY).sum())
        tau = s.tau_max or tau_max_for(s.n_samples, s.k, n_findings, s.tau_max_slack)
        n_anat = int((v["type"] == ANATOMY).sum())
        tau = max(tau, tau_max_for(s.n_samples, s.m, n_anat, s.tau_max_slack)) if s.tau_max is None else tau
        draws = balanced_draws(v, s.n_samples, s.k, s.m, tau, rng)
    else:
        tau = None
        draws = longtail_draws(v, s.n_samples, s.k, s.m, rng)
    names, types = v["name"].tolist(), v["type"].tolist()
    split = np.where(np.random.default_rng([s.seed, 29]).random(s.n_samples) < s.val_fraction, "val", "train")
    return pd.DataFrame({
        "index": np.arange(s.n_samples),
        "id": [_sample_id(s.seed, i) for i in range(s.n_samples)],
        "entities": [[{"name": names[j], "type": types[j]} for j in d] for d in draws],
        "split": split,
    }).assign(tau_max=tau if tau is not None else -1)


class Generator:
    """Runs the stages for one generation config into `out_dir`."""

    def __init__(self, out_dir: Path, settings: GenerationSettings, config: dict, ner, llm, t2i, curator,
                 corpus_texts, progress: bool = True):
        self.out = Path(out_dir)
        self.s, self.config = settings, config
        self.ner, self.llm, self.t2i, self.curator = ner, llm, t2i, curator
        self.corpus_texts = corpus_texts  # a callable: only read when the vocabulary is missing
        self.progress = progress

    # -- stage 1 -----------------------------------------------------------------------------
    def vocabulary(self) -> pd.DataFrame:
        path = self.out / "vocab.parquet"
        if path.is_file():
            return pd.read_parquet(path)
        vocab = build_vocabulary(self.corpus_texts(), self.ner, progress=self.progress)
        if vocab.empty:
            raise ValueError("the NER found no entities in the report corpus")
        write_parquet_atomic(path, vocab)
        plot_long_tail({"corpus": vocab}, self.out / "vocab_long_tail.png")
        return vocab

    # -- stage 2 -----------------------------------------------------------------------------
    def plan(self, vocab: pd.DataFrame) -> pd.DataFrame:
        path = self.out / "plan.parquet"
        if path.is_file():
            return pd.read_parquet(path)
        plan = make_plan(vocab, self.s)
        write_parquet_atomic(path, plan)
        return plan

    # -- stage 3 -----------------------------------------------------------------------------
    def _images(self, ids, impressions, indices, counters: Counter) -> dict[str, tuple[np.ndarray, int]]:
        """Image per sample id, regenerated from the same prompt while curation rejects it."""
        done: dict[str, tuple[np.ndarray, int]] = {}
        pending = list(ids)
        for attempt in range(self.s.max_image_attempts):
            if not pending:
                break
            seeds = [self.s.seed * 10_000_019 + indices[i] * 101 + attempt for i in pending]
            images = self.t2i.generate([impressions[i] for i in pending], seeds)
            counters["images_generated"] += len(images)
            verdicts = self.curator.check(images) if self.curator is not None else [(True, "")] * len(images)
            still = []
            for sid, img, (ok, reason) in zip(pending, images, verdicts):
                if ok:
                    done[sid] = (img, attempt + 1)
                else:
                    counters[f"images_rejected_{reason.split(':')[0]}"] += 1
                    still.append(sid)
            counters["images_regenerated"] += len(still) if attempt + 1 < self.s.max_image_attempts else 0
            pending = still
        counters["images_gave_up"] += len(pending)
        return done

    def shard(self, k: int, rows: pd.DataFrame) -> None:
        shard_dir = self.out / "shards"
        samples = {r.id: list(r.entities) for r in rows.itertuples()}
        indices = {r.id: int(r.index) for r in rows.itertuples()}
        seeds = {sid: self.s.seed * 10_000_019 + indices[sid] for sid in samples}
        before = Counter(self.llm.counters()) if hasattr(self.llm, "counters") else Counter()
        rep = write_reports(self.llm, self.ner, samples, seeds, self.s.max_report_attempts)
        counters = Counter(rep.counters)
        if hasattr(self.llm, "counters"):  # backend counters (HTTP errors, retries) for this shard
            counters.update(Counter(self.llm.counters()) - before)
        ok_ids = [sid for sid in samples if sid in rep.impressions]
        images = self._images(ok_ids, rep.impressions, indices, counters)
        (self.out / "images").mkdir(exist_ok=True)
        out_rows = []
        split = dict(zip(rows["id"], rows["split"]))
        for sid in ok_ids:
            if sid not in images:
                continue
            img, img_attempts = images[sid]
            Image.fromarray(img).save(self.out / "images" / f"{sid}.png", compress_level=1)
            keys, _ = findings_from_entities(samples[sid])
            out_rows.append({
                "id": sid, "image": f"images/{sid}.png", "findings": rep.findings[sid],
                "impression": rep.impressions[sid], "entities": samples[sid], "source": "synthetic",
                "split": split[sid], "labels": keys, "seed": self.s.seed, "llm": self.llm.name,
                "imagegen": self.t2i.name, "report_attempts": rep.attempts[sid], "image_attempts": img_attempts,
            })
        counters["samples_written"] += len(out_rows)
        counters["samples_dropped"] += len(samples) - len(out_rows)
        if rep.rejects:
            tmp = shard_dir / f".rejects_{k:05d}.jsonl.tmp"
            tmp.write_text("".join(json.dumps(r, default=str) + "\n" for r in rep.rejects))
            tmp.replace(shard_dir / f"rejects_{k:05d}.jsonl")
        write_json_atomic(shard_dir / f"counters_{k:05d}.json", dict(counters))
        # The parquet is the shard's commit point: written last, atomically.
        write_parquet_atomic(shard_dir / f"shard_{k:05d}.parquet", pd.DataFrame(out_rows))

    # -- stage 4 -----------------------------------------------------------------------------
    def finalize(self, vocab: pd.DataFrame, plan: pd.DataFrame, n_shards: int) -> Path:
        shard_dir = self.out / "shards"
        df = pd.concat([pd.read_parquet(shard_dir / f"shard_{k:05d}.parquet") for k in range(n_shards)],
                       ignore_index=True)
        counters: Counter = Counter()
        for k in range(n_shards):
            counters.update(json.loads((shard_dir / f"counters_{k:05d}.json").read_text()))
        used = Counter((e["name"], e["type"]) for ents in df["entities"] for e in ents)
        subset = subset_vocabulary(vocab, self.s.entity_ratio, self.s.seed)
        out_vocab = pd.DataFrame([{"name": n, "type": t, "count": used.get((n, t), 0)}
                                  for n, t in zip(subset["name"], subset["type"])])
        stats = {"all": frequency_stats(out_vocab["count"])}
        for etype in ENTITY_TYPES:
            stats[etype] = frequency_stats(out_vocab.loc[out_vocab["type"] == etype, "count"])
        info = {
            "name": "synthetic", "hash": generation_hash(self.config), "config": self.config,
            "counts": {"rows": int(len(df)), "planned": int(len(plan)),
                       "splits": {k: int(v) for k, v in df["split"].value_counts().items()}},
            "counters": {k: int(v) for k, v in sorted(counters.items())},
            "entity_stats": stats,
            "finding_stats": finding_stats(Counter(k for ks in df["labels"] for k in ks)) if len(df) else {},
            "coverage": {"vocabulary": int(len(vocab)), "in_subset": int(len(subset)),
                         "used": int((out_vocab["count"] > 0).sum()),
                         "fraction_used": float((out_vocab["count"] > 0).mean()) if len(out_vocab) else 0.0},
            "tau_max": int(plan["tau_max"].iloc[0]),
        }
        plot_long_tail({"corpus": vocab, "generated": out_vocab}, self.out / "entity_distribution.png")
        write_json_atomic(self.out / INFO, info)
        write_parquet_atomic(self.out / MANIFEST, df)
        return self.out

    def run(self, until: str = "all") -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "shards").mkdir(exist_ok=True)
        write_json_atomic(self.out / "generation_config.json", self.config)
        vocab = self.vocabulary()
        if until == "vocab":
            return self.out
        plan = self.plan(vocab)
        if until == "plan":
            return self.out
        n_shards = -(-len(plan) // self.s.shard_size)
        todo = [k for k in range(n_shards) if not (self.out / "shards" / f"shard_{k:05d}.parquet").is_file()]
        for k in tqdm(todo, desc="generate shards", disable=not self.progress):
            self.shard(k, plan.iloc[k * self.s.shard_size:(k + 1) * self.s.shard_size])
        return self.finalize(vocab, plan, n_shards)
