"""One generation job: a generation config (generate.py's root, or train.py's `generation`) turned
into its settings and backends and run into a dataset directory. Backends are built with
`syncxr.config.build` from their `_target_`, so heavy ones are imported only when selected."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from ..config import build, is_phantom_preset, plain
from ..reports.backend_failure import BackendMisconfigured
from .addresses import generation_hash
from .pipeline import Backends, GenerationSettings, Generator
from .shard_store import IncompleteGeneration

GENERATION_KEYS = (
    "n_samples",
    "seed",
    "entity_ratio",
    "val_fraction",
    "shard_size",
    "max_report_attempts",
    "max_image_attempts",
    "llm",
    "ner",
    "imagegen",
    "sampling",
    "curation",
    "corpus",
)


def generation_config(cfg) -> dict:
    """The plain dict of generation keys (from generate.py's root or train.py's `generation`)."""
    missing = [k for k in GENERATION_KEYS if k not in cfg]
    if missing:
        raise ValueError(f"generation config lacks key(s) {missing}")
    return {k: plain(cfg[k]) if hasattr(cfg[k], "items") else cfg[k] for k in GENERATION_KEYS}  # third-party


def is_phantom(gen: dict) -> bool:
    """True when every backend is the phantom world's own (cheap, CPU-only: made on first use)."""
    return all(is_phantom_preset(gen[group], group) for group in ("llm", "ner", "imagegen", "curation"))


def generated_dir(gen: dict, cache_dir: Path) -> Path:
    """Where train.py looks for the dataset of `gen`: addressed by the hash of its config."""
    return Path(cache_dir) / "generated" / f"syncxr-{generation_hash(gen)}"


def build_settings(gen: dict) -> GenerationSettings:
    s = gen["sampling"]
    return GenerationSettings(
        n_samples=gen["n_samples"],
        seed=gen["seed"],
        entity_ratio=gen["entity_ratio"],
        sampling=s["name"],
        k=s["k"],
        m=s["m"],
        tau_max=s["tau_max"],
        tau_max_slack=s["tau_max_slack"],
        shard_size=gen["shard_size"],
        max_report_attempts=gen["max_report_attempts"],
        max_image_attempts=gen["max_image_attempts"],
        val_fraction=gen["val_fraction"],
    )


def build_curator(cur: dict, real_rejects: Callable[[], list] | None = None):
    """The curation step of a `curation/*.yaml` config: the judge's questions (an image fails on
    `drop_if_no` of them), then similarity to a bank of bad images (`bad_bank`: `real_rejects`, the
    images the judge dropped from the real corpus, as SynCXR does; `phantom`; or a directory of
    images); None for `curation=none`. `real_rejects` returns those images (read only if needed)."""
    if cur.get("name") == "none":
        return None
    from ..images.curation import Curator, load_image_bank, phantom_bad_images  # noqa: PLC0415

    if cur["bad_bank"] == "real_rejects":
        if real_rejects is None:
            raise ValueError(
                "curation.bad_bank=real_rejects needs the real corpus's curation (run through train.py "
                "or generate.py, which curate the corpus group's dataset)"
            )
        bank = real_rejects()
    elif cur["bad_bank"] == "phantom":
        bank = phantom_bad_images()
    else:
        bank = load_image_bank(cur["bad_bank"])
    return Curator(
        build(cur["judge"], "curation.judge"),
        build(cur["embedding"], "curation.embedding"),
        bank,
        delta=cur["delta"],
        drop_if_no=cur["drop_if_no"],
    )


def generation_command(gen: dict, overrides: list[str] | None = None) -> str:
    """The generate.py command that makes the dataset of `gen`. generate.py composes train.py's
    config, so a training job's own overrides name exactly its dataset; without them (a config not
    composed by an entry point), the choices and plain keys."""
    if overrides is not None:
        return " ".join(["python generate.py", *(shlex.quote(o) for o in overrides)])
    parts = [f"{group}={gen[group]['name']}" for group in ("llm", "ner", "imagegen", "sampling", "curation")]
    parts += [f"generation.{k}={gen[k]}" for k in ("n_samples", "seed", "entity_ratio")]
    return "python generate.py " + " ".join(parts)


def run_generation(
    gen: dict,
    out_dir: Path,
    corpus_texts: Callable[[], list[str]],
    progress: bool = True,
    until: str = "all",
    worker: int = 0,
    workers: int = 1,
    real_rejects: Callable[[], list] | None = None,
) -> Path | None:
    """Generates (or resumes) the dataset of `gen` in `out_dir`, or worker `worker`'s part of it when
    `workers` > 1 (None while other workers' shards are missing); `corpus_texts` returns the reports
    the entity vocabulary is built from (read only when the vocabulary stage is not done);
    `real_rejects` the curation's bank of bad images when `curation.bad_bank=real_rejects`. Raises
    IncompleteGeneration when a backend failed on samples (re-running retries exactly those)."""
    ner = build(gen["ner"], "ner")
    settings = build_settings(gen)  # checked before the other backends are built (they may be slow to load)
    backends = Backends(
        ner, build(gen["llm"], "llm"), build(gen["imagegen"], "imagegen"), build_curator(gen["curation"], real_rejects)
    )
    generator = Generator(out_dir, settings, gen, backends, corpus_texts, progress=progress)
    return generator.run(until, worker=worker, workers=workers)


def worker_of(worker: int | None, workers: int) -> tuple[int, int]:
    """(worker, workers) of a generate.py process: `worker` None is the only worker of one."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if worker is None:
        if workers > 1:
            raise ValueError(
                f"workers={workers} splits the work over {workers} processes: start them all with "
                f"`python generate.py -m workers={workers}` (+ hydra/launcher=slurm for SLURM jobs, "
                "hydra/launcher=submitit_local for local processes), or give this one its part "
                f"with worker=<0..{workers - 1}>"
            )
        return 0, 1
    if not 0 <= worker < workers:
        raise ValueError(f"worker must be in 0..{workers - 1} (workers={workers}), got {worker}")
    return worker, workers


@contextmanager
def resume_hint(command: list[str]):
    """Adds the command that resumes to an IncompleteGeneration or BackendMisconfigured raised inside
    (the process exits non-zero with it)."""
    try:
        yield
    except (IncompleteGeneration, BackendMisconfigured) as e:
        e.args = (f"{e.args[0]}:\n  {shlex.join(command)}",)
        raise
