"""Resumable, config-addressed generation of a synthetic image-report dataset.

Stages, each written atomically into the dataset directory and skipped when already there:
  vocab.parquet  entity vocabulary of the report corpus (+ long-tail plot)
  plan.parquet   the sampled entities of every sample (balanced or long-tailed)
  shards/        reports, images and curation, `shard_size` samples at a time (generation/shard_store.py)
  manifest.parquet + dataset.json   the finished dataset (written last)
Every random choice is seeded from (seed, sample index, attempt), so a run killed anywhere and
started again produces exactly the dataset an uninterrupted run would; so does a run split over
several workers (worker w of K makes the shards k with k mod K = w). The vocabulary and plan are
made under the directory's lock, once; each shard under its own lock; the manifest by the process
that finds every shard done. Samples a backend failed on are kept as retryable and the run ends
with `IncompleteGeneration`: the dataset is complete only when every planned sample is written or
dropped for a content reason (the NER never matched within the attempts, curation never passed).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from ..backends import LLM, NER, ImageJudge, TextToImage, quality_record
from ..data.dataset_format import INFO, MANIFEST, config_hash, is_complete, write_json_atomic, write_parquet_atomic
from ..data.durable import fsync_file
from ..entities.sampling import balanced_draws, longtail_draws, subset_vocabulary, tau_max_for
from ..entities.vocabulary import build_vocabulary, frequency_stats, plot_long_tail
from ..images.curation import Curator
from ..images.phantom_t2i import findings_from_entities
from ..phantom.corpus import finding_stats
from ..phantom.vocabulary import ANATOMY, ENTITY_TYPES
from ..reports.backend_failure import is_backend_failure
from ..reports.loop import write_reports
from .addresses import CONFIG_FILE, addressed_config, check_same_config, directory_lock
from .attempts import attempt_stats
from .shard_store import IncompleteGeneration, ShardStore

SECTIONS = {"findings": 0, "impression": 1}


@dataclass
class GenerationSettings:
    """The plain keys of a generation config (conf/generation/default.yaml and the sampling group)."""

    n_samples: int
    seed: int
    entity_ratio: float
    sampling: str  # balanced | longtail
    k: int  # entities per sample from the four finding types
    m: int  # entities per sample from ANATOMY
    tau_max: int | None  # per-entity cap; None: balanced count x tau_max_slack
    tau_max_slack: float
    shard_size: int
    max_report_attempts: int
    max_image_attempts: int
    val_fraction: float

    def __post_init__(self):
        if self.n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {self.n_samples}")
        if self.sampling not in ("balanced", "longtail"):
            raise ValueError(f"sampling must be 'balanced' or 'longtail', got {self.sampling!r}")
        if not 0.0 < self.entity_ratio <= 1.0:
            raise ValueError(f"entity_ratio must be in (0, 1], got {self.entity_ratio}")
        if self.shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {self.shard_size}")
        for key in ("max_report_attempts", "max_image_attempts"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        if not 0.0 <= self.val_fraction < 1.0:  # 1 would leave no training row
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")


def _sample_id(seed: int, i: int) -> str:
    return f"syn-{seed}-{i:07d}"


def planned_splits(n_samples: int, seed: int, val_fraction: float) -> np.ndarray:
    """The split ("train" or "val") of each planned sample: a seeded draw per sample, so the rows held
    out for validation are known before anything is generated (the cost preview counts them)."""
    return np.where(np.random.default_rng([seed, 29]).random(n_samples) < val_fraction, "val", "train")


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
    split = planned_splits(s.n_samples, s.seed, s.val_fraction)
    return pd.DataFrame(
        {
            "index": np.arange(s.n_samples),
            "id": [_sample_id(s.seed, i) for i in range(s.n_samples)],
            "entities": [[{"name": names[j], "type": types[j]} for j in d] for d in draws],
            "split": split,
        }
    ).assign(tau_max=tau if tau is not None else -1)


def _backend_counters(*backends: LLM | TextToImage | ImageJudge | None) -> Counter:
    """The backends' transport counters (HTTP errors, retries, calls); None: a step not configured."""
    out: Counter = Counter()
    for b in backends:
        if b is not None:
            out.update(b.counters())
    return out


def _content_counters(samples: dict, retryable: dict, rep, per_sample: dict[str, Counter]) -> Counter:
    """The content counters of a shard's finished samples (a retried shard ends as an uninterrupted
    one would), every known key present even when nothing happened."""
    content = Counter()
    for sid in samples:
        if sid not in retryable:
            content.update(rep.per_sample.get(sid, {}))
            content.update(per_sample[sid])
    for key in ("findings_gave_up", "impression_gave_up", "images_generated", "images_regenerated", "images_gave_up"):
        content[key] += 0  # present even when nothing happened
    return content


@dataclass(frozen=True)
class Backends:
    """The models a generation calls, built from its config's groups."""

    ner: NER  # entities of a report (the vocabulary stage, and checking each written report)
    llm: LLM  # report writer
    t2i: TextToImage  # text-to-image
    curator: Curator | None  # accepts or rejects each image (None: every image is kept)


class Generator:
    """Runs the stages for one generation config into `out_dir`."""

    def __init__(
        self,
        out_dir: Path,
        settings: GenerationSettings,
        config: dict,
        backends: Backends,
        corpus_texts,
        progress: bool = True,
    ):
        self.out = Path(out_dir)
        self.s, self.config = settings, addressed_config(config)
        self.ner, self.llm, self.t2i, self.curator = backends.ner, backends.llm, backends.t2i, backends.curator
        self.corpus_texts = corpus_texts  # a callable: only read when the vocabulary is missing
        self.progress = progress
        self.store = ShardStore(self.out / "shards")

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
    def _images(
        self, ids, impressions, indices, per_sample: dict[str, Counter], retryable: dict[str, str]
    ) -> dict[str, tuple[np.ndarray, int]]:
        """Image per sample id, regenerated from the same prompt while curation rejects it; an id whose
        image or verdict a backend failed to give goes to `retryable`."""
        done: dict[str, tuple[np.ndarray, int]] = {}
        pending = list(ids)
        for attempt in range(self.s.max_image_attempts):
            if not pending:
                break
            seeds = [self.s.seed * 10_000_019 + indices[i] * 101 + attempt for i in pending]
            images = self.t2i.generate([impressions[i] for i in pending], seeds)
            drawn = [(sid, img) for sid, img in zip(pending, images) if not is_backend_failure(img)]
            retryable.update(
                {sid: f"imagegen:{img.reason}" for sid, img in zip(pending, images) if is_backend_failure(img)}
            )
            # None: the model answered no image (LLM-CXR without its 256 image tokens): drawn again.
            blank = [sid for sid, img in drawn if img is None]
            drawn = [(sid, img) for sid, img in drawn if img is not None]
            verdicts = (
                self.curator.check([img for _, img in drawn])
                if self.curator is not None and drawn
                else [(True, "")] * len(drawn)
            )
            still = []
            for sid in blank:
                per_sample[sid]["images_generated"] += 1
                per_sample[sid]["images_rejected_no_image"] += 1
                per_sample[sid]["images_regenerated"] += int(attempt + 1 < self.s.max_image_attempts)
                still.append(sid)
            for (sid, img), verdict in zip(drawn, verdicts):
                per_sample[sid]["images_generated"] += 1
                if is_backend_failure(verdict):
                    retryable[sid] = f"curation:{verdict.reason}"
                elif verdict[0]:
                    done[sid] = (img, attempt + 1)
                else:
                    per_sample[sid][f"images_rejected_{verdict[1].split(':')[0]}"] += 1
                    per_sample[sid]["images_regenerated"] += int(attempt + 1 < self.s.max_image_attempts)
                    still.append(sid)
            pending = still
        for sid in pending:
            per_sample[sid]["images_gave_up"] += 1
        return done

    def shard(self, k: int, rows: pd.DataFrame, todo: list[str]) -> dict:
        """Makes the samples `todo` of shard k (plan rows `rows`) and commits them."""
        order = rows["id"].tolist()
        rows = rows[rows["id"].isin(set(todo))]
        samples = {r.id: list(r.entities) for r in rows.itertuples()}
        indices = {r.id: int(r.index) for r in rows.itertuples()}
        split = dict(zip(rows["id"], rows["split"]))
        seeds = {sid: self.s.seed * 10_000_019 + indices[sid] for sid in samples}
        judge = self.curator.judge if self.curator is not None else None
        before = _backend_counters(self.llm, self.t2i, judge)
        rep = write_reports(self.llm, self.ner, samples, seeds, self.s.max_report_attempts)
        retryable = dict(rep.retryable)
        per_sample: dict[str, Counter] = defaultdict(Counter)
        ok_ids = [sid for sid in samples if sid in rep.impressions]
        images = self._images(ok_ids, rep.impressions, indices, per_sample, retryable)
        out_rows = self._write_rows(ok_ids, images, retryable, samples, rep, split)
        content = _content_counters(samples, retryable, rep, per_sample)
        content["samples_written"] += len(out_rows)
        content["samples_dropped"] += len(samples) - len(out_rows) - len(retryable)
        # Content counters count finished samples only (so a retried shard ends as an uninterrupted
        # one would); backend counters count every run's traffic.
        counters = {"content": content, "backend": _backend_counters(self.llm, self.t2i, judge) - before}
        pos = {sid: i for i, sid in enumerate(order)}
        rejects = [r for r in rep.rejects if r["id"] not in retryable]
        return self.store.commit(
            k,
            order,
            out_rows,
            counters,
            retryable,
            rejects,
            reject_key=lambda r: (SECTIONS[r["section"]], r["attempt"], pos[r["id"]]),
        )

    def _write_rows(self, ok_ids, images, retryable, samples, rep, split) -> list[dict]:
        """Saves each finished sample's image (durably: before the shard that names it commits) and
        returns its manifest rows; samples left retryable are not written."""
        (self.out / "images").mkdir(exist_ok=True)
        out_rows = []
        for sid in ok_ids:
            if sid not in images or sid in retryable:
                continue
            img, img_attempts = images[sid]
            Image.fromarray(img).save(self.out / "images" / f"{sid}.png", compress_level=1)
            fsync_file(self.out / "images" / f"{sid}.png")  # on disk before the shard that names it commits
            keys, _ = findings_from_entities(samples[sid])
            out_rows.append(
                {
                    "id": sid,
                    "image": f"images/{sid}.png",
                    "findings": rep.findings[sid],
                    "impression": rep.impressions[sid],
                    "entities": samples[sid],
                    "source": "synthetic",
                    "split": split[sid],
                    "labels": keys,
                    "seed": self.s.seed,
                    "llm": self.llm.name,
                    "imagegen": self.t2i.name,
                    "report_attempts": rep.attempts[sid],
                    "image_attempts": img_attempts,
                }
            )
        return out_rows

    # -- stage 4 -----------------------------------------------------------------------------
    def finalize(self, vocab: pd.DataFrame, plan: pd.DataFrame, n_shards: int) -> Path:
        frames = [f for f in (self.store.rows(k) for k in range(n_shards)) if len(f)]
        summary = self.store.summary(n_shards)
        counters = summary["counters"].get("content", {})
        if not frames:
            raise ValueError(
                f"{self.out}: none of the {len(plan)} planned samples gave a row: all were dropped "
                f"for their content ({counters}); the rejected answers are in {self.out / 'shards'}"
            )
        df = pd.concat(frames, ignore_index=True)
        used = Counter((e["name"], e["type"]) for ents in df["entities"] for e in ents)
        subset = subset_vocabulary(vocab, self.s.entity_ratio, self.s.seed)
        out_vocab = pd.DataFrame(
            [{"name": n, "type": t, "count": used.get((n, t), 0)} for n, t in zip(subset["name"], subset["type"])]
        )
        stats = {"all": frequency_stats(out_vocab["count"])}
        for etype in ENTITY_TYPES:
            stats[etype] = frequency_stats(out_vocab.loc[out_vocab["type"] == etype, "count"])
        info = {
            "name": "synthetic",
            "hash": config_hash(self.config),
            "config": self.config,
            # planned = rows + dropped (for their content); retried: samples a backend failed on
            # once and that a later run made or dropped.
            "counts": {
                "rows": int(len(df)),
                "planned": int(len(plan)),
                "dropped": int(len(plan) - len(df)),
                "retried": int(summary["retried"]),
                "splits": {k: int(v) for k, v in df["split"].value_counts().items()},
            },
            "attempts": attempt_stats(df, len(plan), counters, self.s.max_report_attempts, self.s.max_image_attempts),
            "counters": {k: int(v) for k, v in sorted(counters.items())},
            "backend": summary["counters"].get("backend", {}),
            "backend_quality": quality_record(self.llm, self.ner, self.t2i),  # measured, {} where not
            "entity_stats": stats,
            "finding_stats": finding_stats(Counter(k for ks in df["labels"] for k in ks)) if len(df) else {},
            "coverage": {
                "vocabulary": int(len(vocab)),
                "in_subset": int(len(subset)),
                "used": int((out_vocab["count"] > 0).sum()),
                "fraction_used": float((out_vocab["count"] > 0).mean()) if len(out_vocab) else 0.0,
            },
            "tau_max": int(plan["tau_max"].iloc[0]),
        }
        plot_long_tail({"corpus": vocab, "generated": out_vocab}, self.out / "entity_distribution.png")
        write_json_atomic(self.out / INFO, info)
        write_parquet_atomic(self.out / MANIFEST, df)
        return self.out

    def run(self, until: str = "all", worker: int = 0, workers: int = 1) -> Path | None:
        """Makes (or resumes) this worker's shards; returns the dataset directory once every shard is
        done (the last worker writes the manifest), None while other workers' shards are missing.
        Raises IncompleteGeneration when samples of this worker's shards are left retryable."""
        if not 0 <= worker < workers:
            raise ValueError(f"worker must be in [0, workers={workers}), got {worker}")
        with directory_lock(self.out):
            check_same_config(self.out, self.config)
            (self.out / "shards").mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.out / CONFIG_FILE, self.config)
            if is_complete(self.out):
                return self.out
            vocab = self.vocabulary()
            plan = self.plan(vocab) if until != "vocab" else None
        if until in ("vocab", "plan"):
            return self.out
        n_shards = -(-len(plan) // self.s.shard_size)
        mine = [k for k in range(n_shards) if k % workers == worker]
        for k in tqdm(
            mine,
            desc=f"generate shards (worker {worker}/{workers})" if workers > 1 else "generate shards",
            disable=not self.progress,
        ):
            with self.store.lock(k):  # another process may be on it: wait, then find it done
                rows = plan.iloc[k * self.s.shard_size : (k + 1) * self.s.shard_size]
                todo = self.store.todo(k, rows["id"])
                if todo:
                    self.shard(k, rows, todo)
        with directory_lock(self.out):
            if is_complete(self.out):
                return self.out
            summary = self.store.summary(n_shards)
            if not summary["missing"] and not summary["retryable"]:
                return self.finalize(vocab, plan, n_shards)
            mine_left = sum(len(self.store.record(k)["retryable"]) for k in mine)
            if mine_left or workers == 1:
                raise IncompleteGeneration(
                    self.out, summary["retryable"], len(plan), summary["reasons"], len(summary["missing"])
                )
            return None
