"""Partially synthetic datasets (SynCXR Table 4b): a real dataset with either its reports or its
images replaced, row by row, by generated ones.

  real_image_syn_report  every real image described anew by an image-to-report model
  syn_image_real_report  every real report drawn anew by a text-to-image model

Real rows are processed in shards inside `<target>.work/`, each committed atomically by
generation/shard_store.py (as in generation/pipeline.py), so a killed build resumes at the first
missing shard, and rows a backend failed on (server down) are made by the next run, never dropped.
When all shards are done the dataset is assembled in a temporary directory and renamed into place
(`DatasetBuilder`), and the work directory is removed.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..backends import NER, ImageToReport, TextToImage
from ..config import without_transport_keys
from ..data.dataset_format import INFO, MANIFEST, DatasetBuilder, config_hash, write_json_atomic, write_parquet_atomic
from ..data.mixing import load_table
from .partial_rows import describe_real_images, draw_real_reports, link_or_copy
from .shard_store import IncompleteGeneration, ShardStore

# kind -> (the `source` of its rows, the prefix of its row ids)
KINDS = {
    "real_image_syn_report": ("real_image+syn_report", "synrep"),
    "syn_image_real_report": ("syn_image+real_report", "synimg"),
}
# kind -> the config section of the backend that makes its synthetic half
BACKEND_SECTION = {"real_image_syn_report": "i2r", "syn_image_real_report": "imagegen"}
COMMON_KEYS = {"kind", "real", "ner", "seed", "max_attempts", "shard_size"}
# kind -> keys it may leave out: syn_image_real_report's `curation` (null or absent: the drawn images
# are not curated; a curation/*.yaml section: drawn again while it rejects them, paper §3.2 / §4.3).
OPTIONAL_KEYS = {"real_image_syn_report": set(), "syn_image_real_report": {"curation"}}
# Bump when the rows a config produces change, so cached datasets are rebuilt.
PARTIAL_VERSION = "partial-v1"
# Batch sizes of backends whose answers do not depend on the batching (not part of the address).
BATCHING_KEYS = (("imagegen", "batch_size"), ("ner", "batch_size"))


@dataclass(frozen=True)
class PartialSettings:
    kind: str  # a key of KINDS
    seed: int  # per-row seeds derive from (seed, real row, attempt)
    max_attempts: int  # tries per real row, each with a new seed, before it counts as failed
    shard_size: int  # real rows per resumable shard

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"partial dataset kind must be one of {sorted(KINDS)}, got {self.kind!r}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {self.shard_size}")


def check_partial_spec(spec: dict, key: str) -> str:
    """The kind of a `dataset/{real_image_syn_report,syn_image_real_report}.yaml` spec (without its
    `builder`), after checking it has exactly the keys of that kind."""
    kind = spec.get("kind")
    if kind not in BACKEND_SECTION:
        raise ValueError(f"{key}.kind must be one of {sorted(BACKEND_SECTION)}, got {kind!r}")
    allowed = COMMON_KEYS | {BACKEND_SECTION[kind]} | OPTIONAL_KEYS[kind]
    unknown, missing = sorted(set(spec) - allowed), sorted(allowed - OPTIONAL_KEYS[kind] - set(spec))
    if unknown or missing:
        raise ValueError(
            f"{key}: unknown key(s) {unknown}, missing key(s) {missing} for kind {kind!r}; expected {sorted(allowed)}"
        )
    return kind


def partial_hash(config: dict) -> str:
    """The address of a partial dataset's config: without transport keys (a key, a URL, a timeout)
    nor the batch sizes of backends whose answers do not depend on the batching. A null `curation`
    is no key: uncurated sets keep the address they had before curation was an option."""
    config = {k: v for k, v in config.items() if not (k == "curation" and v is None)}
    return config_hash({"version": PARTIAL_VERSION, **without_transport_keys(config, BATCHING_KEYS)})


def partial_dataset_dir(cache_dir: Path, kind: str, config: dict) -> Path:
    """Where the dataset of `config` lives under `cache_dir` (addressed by its hash)."""
    return Path(cache_dir) / "datasets" / f"{kind}-{partial_hash(config)}"


def _make_shard(
    s: PartialSettings, rows: list[dict], backend: ImageToReport | TextToImage, ner: NER, images_dir: Path, curator
):
    source, prefix = KINDS[s.kind]
    if s.kind == "real_image_syn_report":
        return describe_real_images(rows, backend, ner, s.seed, s.max_attempts, images_dir, prefix, source)
    return draw_real_reports(rows, backend, s.seed, s.max_attempts, images_dir, prefix, source, curator)


def build_partial_dataset(
    real_dir: Path,
    target: Path,
    settings: PartialSettings,
    backend: ImageToReport | TextToImage,
    ner: NER,
    config: dict,
    progress: bool = True,
    curator=None,
) -> Path:
    """Builds the dataset of `settings` from the real dataset at `real_dir` into `target`.

    `backend`: an image-to-report model (`describe`) for real_image_syn_report, a text-to-image model
    (`generate`) for syn_image_real_report; `ner` extracts the entities of new reports; `config` is
    recorded in dataset.json; `curator` (syn_image_real_report only) rejects drawn images, which are
    drawn again. Rows a backend failed on are kept for the next run, which makes exactly
    those: until none is left it raises IncompleteGeneration and assembles nothing."""
    real = load_table(real_dir, split=None)
    real["position"] = np.arange(len(real))
    if settings.kind == "real_image_syn_report" and backend.reads_labels and "labels" not in real.columns:
        raise ValueError(
            f"{real_dir}: the {backend.name} image-to-report backend reads the `labels` column, "
            "which this dataset lacks; choose an image-reading backend (transformers, openai)"
        )
    work = target.with_name(target.name + ".work")
    store = ShardStore(work / "shards")
    images = work / "images"
    store.dir.mkdir(parents=True, exist_ok=True)
    images.mkdir(exist_ok=True)
    size, prefix = settings.shard_size, KINDS[settings.kind][1]
    n_shards = -(-len(real) // size)
    with tqdm(total=len(real), desc=settings.kind, unit="row", disable=not progress) as bar:
        for k in range(n_shards):
            chunk = real.iloc[k * size : (k + 1) * size].to_dict("records")
            order = [f"{prefix}-{r['id']}" for r in chunk]
            todo = set(store.todo(k, order))
            if todo:
                rows = [r for r, sid in zip(chunk, order) if sid in todo]
                before = Counter(backend.counters())
                out = _make_shard(settings, rows, backend, ner, images, curator)
                after = Counter(backend.counters())
                pos = {r["id"]: i for i, r in enumerate(chunk)}
                counters = {"content": out.counters, "failed": out.failed, "backend": after - before}
                store.commit(
                    k,
                    order,
                    out.rows,
                    counters,
                    out.retryable,
                    out.rejects,
                    reject_key=lambda r, pos=pos: pos[r["real_id"]],
                )
            bar.update(len(chunk))
    summary = store.summary(n_shards)
    if summary["retryable"]:
        raise IncompleteGeneration(target, summary["retryable"], len(real), summary["reasons"])
    return _assemble(real_dir, len(real), work, store, n_shards, target, settings, config)


def _assemble(
    real_dir: Path,
    n_real: int,
    work: Path,
    store: ShardStore,
    n_shards: int,
    target: Path,
    settings: PartialSettings,
    config: dict,
) -> Path:
    frames = [f for f in (store.rows(k) for k in range(n_shards)) if len(f)]
    summary = store.summary(n_shards)
    failed = summary["counters"].get("failed", {})
    if not frames:
        raise ValueError(
            f"{settings.kind}: none of the {n_real} real rows of {real_dir} gave a pair "
            f"(failed: {dict(failed)}); the last answers are in {store.dir}/rejects_*.jsonl"
        )
    df = pd.concat(frames, ignore_index=True)
    real_info_path = Path(real_dir) / INFO
    real_info = json.loads(real_info_path.read_text()) if real_info_path.is_file() else {}
    info = {
        "name": settings.kind,
        "source": KINDS[settings.kind][0],
        "hash": partial_hash(config),
        "version": PARTIAL_VERSION,
        "config": without_transport_keys(config, BATCHING_KEYS),
        "real": {"dir": str(real_dir), "name": real_info.get("name"), "hash": real_info.get("hash")},
        # real_rows = rows + failed (for their content); retried: rows a backend failed on once
        # and that a later run made or failed.
        "counts": {
            "rows": int(len(df)),
            "real_rows": n_real,
            "retried": int(summary["retried"]),
            "splits": {str(k): int(v) for k, v in df["split"].value_counts().items()},
            "failed": {k: int(v) for k, v in sorted(failed.items())},
        },
        "counters": summary["counters"].get("content", {}),
        "backend": summary["counters"].get("backend", {}),
    }
    with DatasetBuilder(target) as tmp:
        for name in df["image"]:
            link_or_copy(work / name, tmp / name)
        with open(tmp / "rejects.jsonl", "w") as f:  # what the backends answered for every failed row
            for k in range(n_shards):
                f.write("".join(json.dumps(r, default=str) + "\n" for r in store.rejects(k)))
        write_parquet_atomic(tmp / MANIFEST, df)
        write_json_atomic(tmp / INFO, info)
    shutil.rmtree(work, ignore_errors=True)
    return target
