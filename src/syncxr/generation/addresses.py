"""A generation's address: the config keys that identify its data, their hash (a new phantom world
version moves the phantom datasets), the dataset directory's lock, and the check that a directory
is resumed only by the config that started it."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock

from ..config import is_phantom_preset, without_transport_keys
from ..data.dataset_format import config_hash
from ..phantom.corpus import PHANTOM_VERSION

# Keys of a generation config that do not change the data (so not part of its address).
RUNTIME_KEYS = ("output_dir", "progress")
# Batch sizes of backends whose answers do not depend on the batching (each image, each text its own seed).
BATCHING_KEYS = (
    ("llm", "batch_size"),
    ("ner", "batch_size"),
    ("imagegen", "batch_size"),
    ("curation", "embedding", "batch_size"),
)
CONFIG_FILE = "generation_config.json"


def addressed_config(gen: dict) -> dict:
    """What identifies the data of a generation config: no runtime or transport keys."""
    return without_transport_keys({k: v for k, v in gen.items() if k not in RUNTIME_KEYS}, BATCHING_KEYS)


def uses_phantom_world(gen: dict) -> bool:
    """Whether any part of a generation config is drawn by the phantom world (its report writer,
    renderer, lexicon or corpus), so that a new world version must not reuse the cached dataset.
    Curation only keeps or redraws images, so it is not asked."""
    drawn_by = [group for group in ("llm", "imagegen", "ner") if isinstance(gen.get(group), dict)]
    return (
        any(is_phantom_preset(gen[group], group) for group in drawn_by)
        or isinstance(gen.get("corpus"), dict)
        and gen["corpus"].get("builder") == "phantom"
    )


def generation_hash(gen: dict) -> str:
    data = addressed_config(gen)
    if uses_phantom_world(gen):  # a new phantom world must not reuse the datasets of the old one
        data["phantom_world"] = PHANTOM_VERSION
    return config_hash(data)


@contextmanager
def directory_lock(out_dir: Path):
    """The lock of a dataset directory: held while its vocabulary and plan are made and while its
    manifest is written (generate.py, its workers and training jobs all take it)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out_dir) + ".lock"):
        yield


def _flat(d, prefix: str = "") -> dict:
    if not isinstance(d, dict):
        return {prefix: d}
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def check_same_config(out: Path, config: dict) -> None:
    """Refuses to continue, in `out`, a generation made with another config (naming what differs)."""
    path = out / CONFIG_FILE
    if not path.is_file():
        if out.is_dir() and any(out.iterdir()):
            raise FileExistsError(
                f"{out} is not empty and holds no {CONFIG_FILE}: not a generation to resume; choose another output_dir"
            )
        return
    there, asked = _flat(addressed_config(json.loads(path.read_text()))), _flat(addressed_config(config))
    differ = sorted(k for k in there.keys() | asked.keys() if there.get(k) != asked.get(k))
    if differ:
        what = "; ".join(f"{k}: {there.get(k)!r} there, {asked.get(k)!r} asked" for k in differ[:8])
        raise FileExistsError(
            f"{out} holds a generation made with another config ({len(differ)} key(s) differ: "
            f"{what}). Choose another output_dir, or delete {out} to start over"
        )
