"""The generated (SynCXR) datasets a sweep's jobs trained on, as the report shows them: how many
planned samples were dropped (the NER or curation never agreed within the attempt caps, §3.2) and how
many attempts a kept sample took, read from each dataset's dataset.json and manifest.

A job's dataset is found as train.py finds it: by the hash of its resolved generation config under
its paths.cache_dir. Datasets no longer there (another machine, a cleaned cache) are listed as such.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from ..data.dataset_format import INFO, MANIFEST
from ..generation.generation_job import generated_dir, generation_config

log = logging.getLogger(__name__)
ATTEMPT_COLUMNS = {"report_attempts": "mean LLM calls per sample", "image_attempts": "mean images per sample"}


def job_dataset(config: dict) -> Path | None:
    """The generated dataset a job's resolved config trains on (data.syn of builder `generated`)."""
    spec = (config.get("data") or {}).get("syn") or {}
    cache = (config.get("paths") or {}).get("cache_dir")
    if not isinstance(spec, dict) or spec.get("builder") != "generated" or cache is None:
        return None
    try:
        return generated_dir(generation_config(spec["generation"]), Path(cache).expanduser())
    except (KeyError, TypeError, ValueError) as e:  # an older or hand-edited config: no address
        log.warning(f"no generated dataset address from the job's config: {e}")
        return None


def dataset_row(path: Path, jobs: list[str]) -> dict:
    """One dataset's row: rows kept, planned, drop rate, mean attempts of the kept samples."""
    row = {"dataset": path.name, "jobs": len(jobs)}
    info_path = path / INFO
    if not info_path.is_file():
        return row | {"rows": "not found", "planned": "", "dropped": ""}
    info = json.loads(info_path.read_text())
    counts = info.get("counts") or {}
    planned, dropped = counts.get("planned"), counts.get("dropped")
    config = info.get("config") or {}
    row |= {
        "llm": (config.get("llm") or {}).get("name", ""),
        "imagegen": (config.get("imagegen") or {}).get("name", ""),
        "rows": counts.get("rows", ""),
        "planned": planned if planned is not None else "",
        "dropped": f"{dropped} ({100 * dropped / planned:.2f} %)" if planned and dropped is not None else "",
        **quality_columns(info),
    }
    manifest = path / MANIFEST
    if manifest.is_file():
        import pyarrow.parquet as pq  # noqa: PLC0415

        present = [c for c in ATTEMPT_COLUMNS if c in pq.ParquetFile(manifest).schema_arrow.names]
        frame = pd.read_parquet(manifest, columns=present) if present else pd.DataFrame()
        row |= {label: f"{frame[c].mean():.2f}" for c, label in ATTEMPT_COLUMNS.items() if c in frame}
    return row


def quality_columns(info: dict) -> dict:
    """What dataset.json measured of the report LLM (its first answers holding exactly the asked
    entities) and of learned backends (NER span F1; the generator's images scored by a finding
    classifier, macro AUC with and without guidance); blank where not measured."""
    attempts, quality = info.get("attempts") or {}, info.get("backend_quality") or {}
    ner, t2i = quality.get("ner") or {}, quality.get("imagegen") or {}
    first = attempts.get("first_attempt_exact_rate")
    guided, unguided = ((t2i.get(k) or {}).get("macro") for k in ("auc_guided", "auc_unguided"))
    return {
        "first answers exact": f"{first:.3f}" if first is not None else "",
        "NER span F1": f"{ner['span_f1']:.3f}" if "span_f1" in ner else "",
        "image AUC guided / unguided": f"{guided:.3f} / {unguided:.3f}" if guided is not None else "",
    }


def datasets_table(jobs) -> pd.DataFrame:
    """One row per generated dataset the jobs trained on (empty when none did)."""
    used: dict[Path, list[str]] = {}
    for job in jobs:
        if (path := job_dataset(job.config)) is not None:
            used.setdefault(path, []).append(job.name)
    return pd.DataFrame([dataset_row(p, names) for p, names in used.items()])


def datasets_markdown(jobs) -> list[str]:
    """The report's section on the generated datasets (nothing when no job trained on one)."""
    table = datasets_table(jobs)
    if table.empty:
        return []
    return [
        "## Generated datasets",
        "",
        "Each SynCXR dataset the jobs trained on: planned samples, those dropped because the NER or the "
        "curation never agreed within the attempt caps (§3.2 regenerates until they do; the caps are a "
        "safety net), the mean attempts of the kept samples (dataset.json and manifest.parquet), and the "
        "quality measured of the backends: the share of the LLM's first answers with exactly the asked "
        "entities, a learned NER's held-out span F1, and a learned generator's images as a finding "
        "classifier trained on rendered images scores them (macro AUC, with and without guidance).",
        "",
        table.fillna("").to_markdown(index=False, disable_numparse=True),
        "",
    ]
