"""Dataset directories from their config sections (`dataset/*.yaml`, `corpus/*.yaml`; a benchmark's
directory is its own business, `syncxr.benchmarks`): found in the cache by the hash of their config,
or built (under a file lock, so the jobs of a parallel sweep build each one once) on first use."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

from .config import build, plain
from .data.dataset_format import INFO, is_complete
from .data.mixing import load_table, mix_tables
from .entities.long_tail import report_texts
from .entities.vocabulary import read_report_corpus
from .generation.generation_job import (
    build_curator,
    generated_dir,
    generation_command,
    generation_config,
    is_phantom,
    run_generation,
)
from .generation.partial_dataset import (
    BACKEND_SECTION,
    PartialSettings,
    build_partial_dataset,
    check_partial_spec,
    partial_dataset_dir,
)
from .phantom.corpus import PhantomCorpusSpec, corpus_reports, ensure_phantom_corpus


def _check_keys(spec: dict, allowed: set, key: str, builder: str) -> None:
    if set(spec) - allowed:
        raise ValueError(
            f"{key}: unknown key(s) {sorted(set(spec) - allowed)} for builder {builder!r}; allowed: {sorted(allowed)}"
        )


def _spec(cls, spec: dict, key: str):
    try:
        return cls(**spec)
    except TypeError as e:
        raise ValueError(f"{key}: {e} (allowed keys: {list(cls.__dataclass_fields__)})") from e
    except ValueError as e:  # "field must ..." reads as "<key>.field must ..."
        field = str(e).split(" ", 1)[0]
        raise ValueError(f"{key}.{e}" if field in cls.__dataclass_fields__ else f"{key}: {e}") from e


def _phantom_dataset(spec: dict, cache_dir: Path, key: str) -> Path:
    return ensure_phantom_corpus(_spec(PhantomCorpusSpec, spec, key), cache_dir)


def _path_dataset(spec: dict, cache_dir: Path, key: str) -> Path:
    _check_keys(spec, {"path"}, key, "path")
    path = Path(spec["path"]).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{key}.path: dataset directory {path} not found")
    return path


def _generated_dataset(spec: dict, cache_dir: Path, key: str) -> Path:
    _check_keys(spec, {"generation"}, key, "generated")
    return build_generated_dir(spec["generation"], cache_dir, key)


def _mimic_cxr_dataset(spec: dict, cache_dir: Path, key: str) -> Path:
    from .data.mimic_cxr import MimicCxrSpec, ensure_mimic_cxr  # noqa: PLC0415 - pydicom etc. only when used

    return ensure_mimic_cxr(_spec(MimicCxrSpec, spec, key), cache_dir)


def _partial_dataset(spec: dict, cache_dir: Path, key: str) -> Path:
    """A real dataset with its reports or its images replaced by generated ones (Table 4b), built by
    the backend of its `i2r` or `imagegen` section and found again by the hash of its config."""
    kind = check_partial_spec(spec, key)
    real_dir = build_dataset_dir(spec["real"], cache_dir, f"{key}.real")
    settings = _spec(PartialSettings, {k: spec[k] for k in ("kind", "seed", "max_attempts", "shard_size")}, key)
    info_path = real_dir / INFO
    real_hash = json.loads(info_path.read_text()).get("hash") if info_path.is_file() else None
    config = {**spec, "real_hash": real_hash}  # the real data's content hash, where it has one
    target = partial_dataset_dir(cache_dir, kind, config)
    if is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if is_complete(target):
            return target
        section = BACKEND_SECTION[kind]
        backend = build(spec[section], f"{key}.{section}")
        curator = None
        if spec.get("curation") is not None:  # its bad bank: what the judge drops from the real dataset
            rejects = real_rejects_reader({"corpus": spec["real"], "curation": spec["curation"]}, cache_dir)
            curator = build_curator(spec["curation"], rejects)
        ner = build(spec["ner"], f"{key}.ner")
        return build_partial_dataset(real_dir, target, settings, backend, ner, config, curator=curator)


# `dataset/*.yaml` builders: name -> fn(spec without `builder`, cache_dir, config key) -> directory.
DATASET_BUILDERS = {
    "phantom": _phantom_dataset,
    "path": _path_dataset,
    "generated": _generated_dataset,
    "mimic_cxr": _mimic_cxr_dataset,
    "partial": _partial_dataset,
}


def build_dataset_dir(spec_cfg, cache_dir: Path, key: str) -> Path:
    """Directory of a dataset config (`dataset/*.yaml`), building (and caching) it if needed."""
    spec = plain(spec_cfg)
    builder = spec.pop("builder", None)
    if builder not in DATASET_BUILDERS:
        raise ValueError(f"{key}.builder must be one of {sorted(DATASET_BUILDERS)}, got {builder!r}")
    return DATASET_BUILDERS[builder](spec, Path(cache_dir), key)


def build_generated_dir(gen_cfg, cache_dir: Path, key: str) -> Path:
    """The SynCXR dataset of a generation config, found by its hash. A phantom-only config is
    generated on the spot; any other must be made first with the generate.py command named."""
    gen = generation_config(gen_cfg)
    target = generated_dir(gen, cache_dir)
    if is_complete(target):
        return target
    if not is_phantom(gen):
        raise FileNotFoundError(
            f"{key}: no generated dataset at {target}; make it with\n  "
            f"{generation_command(gen, _job_overrides())}\n(with the same paths.cache_dir)"
        )
    # Jobs of a parallel sweep (or a generate.py run) that need the same data share the work: each
    # shard is made once, under its own lock, and the last one done writes the manifest.
    return run_generation(
        gen, target, corpus_reader(gen["corpus"], cache_dir), real_rejects=real_rejects_reader(gen, cache_dir)
    )


def _job_overrides() -> list[str] | None:
    """The command-line overrides of the Hydra job this runs in (None outside one), but for Hydra's
    own settings (run dirs, launcher) that belong to that job alone."""
    from hydra.core.hydra_config import HydraConfig  # noqa: PLC0415

    if not HydraConfig.initialized():
        return None
    return [o for o in HydraConfig.get().overrides.task if not o.lstrip("+~").startswith(("hydra.", "hydra/"))]


def generate_dataset(
    gen: dict,
    out_dir: Path,
    cache_dir: Path,
    progress: bool = True,
    until: str = "all",
    worker: int = 0,
    workers: int = 1,
) -> Path | None:
    """Generates or resumes the dataset of generation config `gen` in `out_dir` (generate.py), or
    worker `worker`'s shards of it out of `workers` (None while other workers' shards are missing).
    It takes the same locks as a training job's generation of the same directory."""
    return run_generation(
        gen,
        Path(out_dir),
        corpus_reader(gen["corpus"], cache_dir),
        progress,
        until,
        worker,
        workers,
        real_rejects_reader(gen, cache_dir),
    )


def real_rejects_reader(gen: dict, cache_dir: Path) -> Callable[[], list]:
    """A callable returning the images the judge of `gen["curation"]` drops from the corpus group's
    dataset (SynCXR Section 3.1): the bank `curation.bad_bank=real_rejects` compares with. The
    curated corpus is cached by the hash of its config, like every dataset."""

    def read() -> list:
        from .images.curation import rejected_images  # noqa: PLC0415

        if gen["corpus"].get("builder") == "file":
            raise ValueError(
                "curation.bad_bank=real_rejects needs a corpus with images (a dataset, e.g. "
                "corpus=mimic_cxr), not a file of reports"
            )
        corpus_dir = build_dataset_dir(gen["corpus"], cache_dir, "corpus")
        return rejected_images(build_curated_dir(corpus_dir, gen["curation"]))

    return read


def corpus_reader(corpus_cfg, cache_dir: Path) -> Callable[[], list[str]]:
    """A callable returning the report texts an entity vocabulary is built from (`corpus/*.yaml`):
    a dataset's training reports (any `dataset/*.yaml` builder) or a CSV/Parquet column
    (`builder: file`). Only called when the vocabulary is not there yet."""
    corpus = plain(corpus_cfg)

    def read() -> list[str]:
        if corpus.get("builder") == "file":
            _check_keys({k: v for k, v in corpus.items() if k != "builder"}, {"path", "text_column"}, "corpus", "file")
            return read_report_corpus(corpus["path"], corpus["text_column"])
        if corpus.get("builder") == "phantom":  # its reports are drawn without rendering its images
            spec = _spec(PhantomCorpusSpec, {k: v for k, v in corpus.items() if k != "builder"}, "corpus")
            return report_texts(corpus_reports(spec, cache_dir, "train"))
        return report_texts(load_table(build_dataset_dir(corpus, cache_dir, "corpus"), "train"))

    return read


def build_training_table(data_cfg, cache_dir: Path, seed: int, split: str = "train", curation_cfg=None):
    """Rows to pre-train on for `data=real|syn|mix`, each with its `source`. With
    `data.curate_real=true` the real corpus is first curated by `curation_cfg` (judge + embedding)."""
    tables = {}
    for part in ("real", "syn"):
        if data_cfg.get(part) is not None:
            directory = build_dataset_dir(data_cfg[part], cache_dir, f"data.{part}")
            if part == "real" and data_cfg.get("curate_real"):
                directory = build_curated_dir(directory, curation_cfg)
            tables[part] = load_table(directory, split, bool(data_cfg.allow_external_images))
    return mix_tables(tables.get("real"), tables.get("syn"), data_cfg.get("syn_fraction"), seed)


def build_curated_dir(source: Path, curation_cfg) -> Path:
    """The real corpus at `source` curated by a `curation/*.yaml` config (its `real` settings)."""
    from .images.corpus_curation import CorpusCurationSettings, ensure_curated_corpus  # noqa: PLC0415

    cur = plain(curation_cfg) if curation_cfg is not None else None
    if not cur or cur.get("name") == "none" or "real" not in cur:
        raise ValueError(
            "data.curate_real=true needs a curation config with a `real` section "
            "(curation=phantom or curation=paper), got "
            f"{cur.get('name') if cur else None!r}"
        )
    settings = _spec(CorpusCurationSettings, cur["real"], "curation.real")
    # What identifies the judge and the embedding (another model gives another curated corpus).
    identity = {
        part: {
            "backend": cur[part].get("backend"),
            "path": cur[part].get("path"),
            "model": (cur[part].get("client") or {}).get("model"),
        }
        for part in ("judge", "embedding")
    }
    # Parallel jobs of a sweep curate once; the others wait for the finished copy.
    with FileLock(str(source) + ".curation.lock"):
        return ensure_curated_corpus(
            source,
            build(cur["judge"], "curation.judge"),
            build(cur["embedding"], "curation.embedding"),
            settings,
            identity,
        )
