"""`dataset/real_image_syn_report.yaml` and `dataset/syn_image_real_report.yaml` -> the partially
synthetic dataset, built once and found again by the hash of its config. Backends are imported and
loaded only when the dataset has to be built."""

from __future__ import annotations

import json
from pathlib import Path

from filelock import FileLock

from .dataset_format import INFO, is_complete
from .partial import PartialSettings, build_partial_dataset, partial_dataset_dir

# kind -> the config section of the backend that makes its synthetic half
BACKEND_SECTION = {"real_image_syn_report": "i2r", "syn_image_real_report": "imagegen"}
COMMON_KEYS = {"kind", "real", "ner", "seed", "max_attempts", "shard_size"}


def build_i2r(i2r: dict):
    """An image-to-report backend from an `i2r/*.yaml` section."""
    backend = i2r["backend"]
    if backend == "oracle":
        from ..reports.oracle_i2r import OracleRadiologist
        return OracleRadiologist(miss_rate=i2r.get("miss_rate", 0.1),
                                 false_positive_rate=i2r.get("false_positive_rate", 0.02),
                                 negation_rate=i2r.get("negation_rate", 0.5))
    if backend == "transformers":
        from ..reports.transformers_i2r import TransformersI2R
        return TransformersI2R(i2r["path"], batch_size=i2r.get("batch_size", 8),
                               max_new_tokens=i2r.get("max_tokens", 256), temperature=i2r.get("temperature", 0.7),
                               top_p=i2r.get("top_p", 0.95), dtype=i2r.get("dtype", "auto"))
    if backend == "openai":
        from ..reports.openai_i2r import OpenAIVisionI2R
        from ..reports.openai_llm import OpenAICompatibleLLM
        return OpenAIVisionI2R(OpenAICompatibleLLM(
            i2r["base_url"], i2r["model"], api_key=i2r.get("api_key"), concurrency=i2r.get("concurrency", 32),
            timeout_s=i2r.get("timeout_s", 120), max_retries=i2r.get("max_retries", 4),
            max_tokens=i2r.get("max_tokens", 256), temperature=i2r.get("temperature", 0.7)))
    raise ValueError(f"i2r.backend must be oracle, transformers or openai, got {backend!r}")


def _check_spec(spec: dict, key: str) -> str:
    kind = spec.get("kind")
    if kind not in BACKEND_SECTION:
        raise ValueError(f"{key}.kind must be one of {sorted(BACKEND_SECTION)}, got {kind!r}")
    allowed = COMMON_KEYS | {BACKEND_SECTION[kind]}
    unknown, missing = sorted(set(spec) - allowed), sorted(allowed - set(spec))
    if unknown or missing:
        raise ValueError(f"{key}: unknown key(s) {unknown}, missing key(s) {missing} for kind {kind!r}; "
                         f"expected {sorted(allowed)}")
    return kind


def ensure_partial_dataset(spec: dict, real_dir: Path, cache_dir: Path, key: str, progress: bool = True) -> Path:
    """Directory of the partially synthetic dataset of `spec` (a plain dict without `builder`) made
    from the real dataset at `real_dir`, building it on first use."""
    from ..generation.builders import build_ner, build_t2i

    kind = _check_spec(spec, key)
    settings = PartialSettings(kind=kind, seed=spec["seed"], max_attempts=spec["max_attempts"],
                               shard_size=spec["shard_size"])
    info_path = Path(real_dir) / INFO
    real_hash = json.loads(info_path.read_text()).get("hash") if info_path.is_file() else None
    config = {**spec, "real_hash": real_hash}  # the real data's content hash, where it has one
    target = partial_dataset_dir(cache_dir, kind, config)
    if is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Jobs of a parallel sweep that need the same data: one builds, the others wait and reuse it.
    with FileLock(str(target) + ".lock"):
        if is_complete(target):
            return target
        ner = build_ner(spec["ner"])
        section = BACKEND_SECTION[kind]
        backend = build_i2r(spec[section]) if section == "i2r" else build_t2i(spec[section], ner)
        return build_partial_dataset(Path(real_dir), target, settings, backend, ner, config, progress)
