"""Cost previews: `python train.py -m ... dry_run=true` lists the jobs and estimates GPU-hours for
generation (once per distinct generation config, per stage) and training, launching nothing;
`python generate.py ... dry_run=true` prices one generation per stage (LLM reports, T2I images,
curation). Per-item costs come from `conf/cost/*.yaml` (override them with measured ones)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from ..config import is_phantom_preset, plain, without_phantom_key
from ..data.dataset_format import config_hash, write_json_atomic
from ..data.durable import write_text_atomic
from ..paper_prerequisites import (
    as_records,
    generation_prerequisites,
    prerequisite_table,
    require,
    training_prerequisites,
)


def _unknown_rows(cost: dict) -> int | None:
    """Rows assumed for a dataset that cannot be counted without building it (None: unknown)."""
    n = cost.get("unknown_dataset_rows")
    return None if n is None else int(n)


def _rows(spec: dict, cost: dict) -> tuple[int | None, dict | None]:
    """(training rows or None where they cannot be counted, generation config or None) of one
    dataset spec, without building anything."""
    if spec is None:
        return 0, None
    if spec["builder"] == "phantom":
        return int(spec["n"]), None
    if spec["builder"] == "generated":  # the planned rows less those held out for validation
        return trained_rows(spec["generation"]), spec["generation"]
    if spec["builder"] == "partial":  # one new report or image per real row
        return _rows(spec["real"], cost)[0], None
    if spec["builder"] == "mimic_cxr":
        return _mimic_rows(spec, cost), None
    path = Path(spec["path"]) / "manifest.parquet"
    if path.is_file():
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows, None
    return _unknown_rows(cost), None


def trained_rows(gen: dict) -> int:
    """Rows of the SynCXR dataset of `gen` that training sees: its planned samples less the ones held
    out for validation (`val_fraction`, drawn per sample from the seed: known before it is made). Samples
    dropped at an attempt cap are not known in advance (dataset.json's `attempts.drop_rate`, once made)."""
    from ..generation.pipeline import planned_splits  # noqa: PLC0415

    return int((planned_splits(int(gen["n_samples"]), int(gen["seed"]), float(gen["val_fraction"])) == "train").sum())


def _mimic_rows(spec: dict, cost: dict) -> int | None:
    """Images of the kept views in the MIMIC-CXR metadata (an upper bound: unpaired rows drop later)."""
    meta = Path(str(spec.get("root"))) / "mimic-cxr-2.0.0-metadata.csv"
    for candidate in (meta, meta.with_name(meta.name + ".gz")):
        if candidate.is_file():
            views = pd.read_csv(candidate, usecols=["ViewPosition"])["ViewPosition"]
            return int(views.isin(list(spec.get("views") or ["PA", "AP"])).sum())
    return _unknown_rows(cost)


def _gpu_h(items: float, table: dict, section: dict, key: str) -> float:
    """GPU-hours of `items` items made by the backend of `section` (config `key`) at its per-item cost
    in `table` (its `name`'s entry, else `default`); phantom backends cost nothing."""
    if is_phantom_preset(section, key):
        return 0.0
    return items * float(table.get(section.get("name"), table["default"])) / 3600


def generation_stages(gen: dict, cost: dict) -> dict[str, float]:
    """GPU-hours per stage of making the SynCXR dataset of generation config `gen` from scratch:
    `llm` (FINDINGS + IMPRESSION per sample, NER-check regenerations included in the per-report
    cost), `t2i` (images drawn per kept sample: `images_per_sample`) and `curation` (each drawn image
    judged and embedded). Phantom backends cost nothing."""
    n = int(gen["n_samples"])
    images = n * float(cost["images_per_sample"])
    curated = not is_phantom_preset(gen["curation"], "curation")
    return {
        "llm": _gpu_h(n, cost["llm_gpu_s_per_report"], gen["llm"], "llm"),
        "t2i": _gpu_h(images, cost["t2i_gpu_s_per_image"], gen["imagegen"], "imagegen"),
        "curation": images * float(cost["curation_gpu_s_per_image"]) / 3600 if curated else 0.0,
    }


def partial_stages(spec: dict, cost: dict) -> dict[str, float]:
    """GPU-hours to make a partially synthetic set: one i2r report or one T2I image per real row (with
    a curation: `images_per_sample` images per row, each judged and embedded, as for SynCXR)."""
    rows = _rows(spec["real"], cost)[0]
    if rows is None:
        return {}
    if spec["kind"] == "real_image_syn_report":
        return {"i2r": _gpu_h(rows, cost["llm_gpu_s_per_report"], spec["i2r"], "i2r")}
    cur = spec.get("curation")
    if cur is None or is_phantom_preset(cur, "curation"):
        return {"t2i": _gpu_h(rows, cost["t2i_gpu_s_per_image"], spec["imagegen"], "imagegen")}
    images = rows * float(cost["images_per_sample"])  # curated: drawn again while rejected
    return {
        "t2i": _gpu_h(images, cost["t2i_gpu_s_per_image"], spec["imagegen"], "imagegen"),
        "curation": images * float(cost["curation_gpu_s_per_image"]) / 3600,
    }


def write_job_cost(cfg: DictConfig, out_dir: str | Path) -> float:
    """train.py dry_run=true: the job's cost.json (GPU-hours and, in paper mode, every prerequisite it
    lacks, also printed) in `out_dir`; NaN, the job's result."""
    cache_dir = Path(cfg.paths.cache_dir).expanduser()
    missing = as_records(training_prerequisites(cfg, cache_dir))
    job = estimate_job(OmegaConf.to_container(cfg, resolve=True), cfg.cost, cache_dir)
    write_json_atomic(Path(out_dir) / "cost.json", {**job, "missing": missing})
    if missing:
        print(f"paper mode: {len(missing)} missing prerequisite(s)\n{prerequisite_table(missing)}")
    return float("nan")


def estimate_job(cfg: dict, cost: dict, cache_dir: Path) -> dict:
    """GPU-hours of one job from per-item costs (`conf/cost/*.yaml`)."""
    data = cfg["data"]
    counts, gens = [], []
    for part in ("real", "syn"):
        n, gen = _rows(data.get(part), cost)
        counts.append(n)
        if gen is not None:
            gens.append(gen)
    if data.get("syn_fraction") is not None and data.get("real") and data.get("syn"):
        counts = [_rows(data["real"], cost)[0]]
    # A dataset that cannot be counted (MIMIC-CXR without its root) leaves the job's rows unknown,
    # rather than priced at a guess.
    rows = None if None in counts else sum(counts)
    per_sample = cost["train_gpu_s_per_sample"].get(cfg["model"]["name"], cost["train_gpu_s_per_sample"]["default"])
    scale = (cfg["loader"]["image_size"] / 224) ** 2  # convolutional cost grows with the pixel count
    train_h = None
    if rows is not None:
        samples = rows * cfg["trainer"]["max_epochs"]
        if cfg["trainer"].get("max_steps") is not None:
            samples = min(samples, cfg["trainer"]["max_steps"] * cfg["loader"]["batch_size"])
        train_h = samples * per_sample * scale / 3600
    out = {
        "model": cfg["model"]["name"],
        "data": data["name"],
        "seed": cfg["seed"],
        "train_rows": rows,
        "train_gpu_h": train_h,
        "generation": [],
    }
    for part in ("real", "syn"):
        spec = data.get(part)
        if spec and spec.get("builder") == "partial":
            stages = partial_stages(spec, cost)
            g = sum(stages.values())
            label = f"{spec['kind']}-{config_hash(without_phantom_key(spec))[:8]}"  # as before presets declared it
            section = "i2r" if spec["kind"] == "real_image_syn_report" else "imagegen"
            # Phantom as its backend declares it, not as a zero price (unknown real rows price nothing).
            phantom = is_phantom_preset(spec[section], f"data.{part}.{section}")
            out["generation"].append(
                {"hash": label, "gpu_h": g, "stages": stages, "exists": False, "phantom": phantom}
                | ({} if stages or phantom else {"rows_unknown": True})
            )
    for gen in gens:
        out["generation"].append(generation_entry(gen, cost, cache_dir))
    return out


def generation_entry(gen: dict, cost: dict, cache_dir: Path) -> dict:
    """The cost-preview entry of one generation config: its hash, GPU-hours per stage and in all
    (nothing when it exists already or is phantom), and whether it exists."""
    from ..generation.generation_job import generated_dir, is_phantom  # noqa: PLC0415

    target = generated_dir(gen, cache_dir)
    exists = (target / "manifest.parquet").is_file()
    stages = {k: 0.0 for k in ("llm", "t2i", "curation")} if exists or is_phantom(gen) else generation_stages(gen, cost)
    return {
        "hash": target.name.removeprefix("syncxr-"),
        "gpu_h": sum(stages.values()),
        "stages": stages,
        "n_samples": int(gen["n_samples"]),
        "exists": exists,
        "phantom": is_phantom(gen),
    }


STAGE_NAMES = {"llm": "LLM reports", "t2i": "T2I images", "curation": "curation", "i2r": "i2r reports"}


def stage_table(gens: list[dict]) -> str:
    """A markdown table: one row per generation, its GPU-hours per stage and in all."""
    stages = [s for s in STAGE_NAMES if any(s in g.get("stages", {}) for g in gens)]
    rows = [
        {
            "generation": g["hash"],
            **{f"{STAGE_NAMES[s]} GPU-h": round(g.get("stages", {}).get(s, 0.0), 2) for s in stages},
            "total GPU-h": round(g["gpu_h"], 2),
            "status": "exists"
            if g["exists"]
            else "phantom (CPU)"
            if g["phantom"]
            else "to make (GPU; real rows unknown: not priced)"
            if g.get("rows_unknown")
            else "to make",
        }
        for g in gens
    ]
    return pd.DataFrame(rows).to_markdown(index=False)


def write_generation_cost(
    gen: dict, cost: dict, cache_dir: Path, out_dir: str | Path, missing: list[dict] | None = None
) -> Path:
    """generate.py dry_run=true: cost.json and cost.md (GPU-hours per stage and, in paper mode, the
    prerequisites it lacks: `missing`, records of syncxr.paper_prerequisites) in `out_dir`."""
    out_dir, missing = Path(out_dir), missing or []
    entry = generation_entry(gen, cost, cache_dir)
    full = generation_stages(gen, cost)  # what it costs from scratch, even where it exists
    write_json_atomic(out_dir / "cost.json", {**entry, "from_scratch": full, "missing": missing})
    status = (
        "already generated: nothing to do"
        if entry["exists"]
        else "phantom backends run on the CPU"
        if entry["phantom"]
        else "split it over K GPUs with generate.py -m workers=K"
    )
    lines = [
        f"# Generation cost preview: syncxr-{entry['hash']}",
        "",
        f"{entry['n_samples']} samples; "
        f"{cost['images_per_sample']} images drawn per kept sample (curation regenerations).",
        "",
        stage_table([{**entry, "stages": full, "gpu_h": sum(full.values())}]),
        "",
        f"**From scratch: {sum(full.values()):.1f} GPU-h** ({status}).",
        "",
        "Per-item costs come from `conf/cost/` (cost.llm_gpu_s_per_report.<llm>=..., "
        "cost.t2i_gpu_s_per_image.<imagegen>=..., cost.curation_gpu_s_per_image=..., cost.images_per_sample=...).",
        *missing_section(missing),
    ]
    path = out_dir / "cost.md"
    write_text_atomic(path, "\n".join(lines))
    return path


MISSING_HEADING = "## Missing prerequisites (paper mode)"


def missing_section(missing: list[dict], jobs: list[int] | None = None) -> list[str]:
    """cost.md's lines on missing paper-mode prerequisites (none: no lines)."""
    if not missing:
        return []
    return [
        "",
        f"{MISSING_HEADING}: {len(missing)}",
        "",
        "Paper mode stops at config time while any of these is missing; give each before the real run.",
        "",
        prerequisite_table(missing, jobs),
    ]


def _sweep_missing(jobs: list[dict]) -> tuple[list[dict], list[int]]:
    """Every distinct missing prerequisite (key and problem) of a sweep's jobs, once, and how many
    jobs lack each."""
    first: dict[tuple, dict] = {}
    counts: dict[tuple, int] = {}
    for j in jobs:
        for m in j.get("missing", []):
            first.setdefault((m["key"], m["problem"]), m)
            counts[(m["key"], m["problem"])] = counts.get((m["key"], m["problem"]), 0) + 1
    return list(first.values()), list(counts.values())


def _job_table(jobs: list[dict]) -> str:
    def known(v, digits=None):
        return "unknown" if v is None else round(v, digits) if digits is not None else v

    rows = [
        {
            "job": j["job"],
            "model": j["model"],
            "data": j["data"],
            "seed": j["seed"],
            "train rows": known(j["train_rows"]),
            "train GPU-h": known(j["train_gpu_h"], 2),
            "generation": ",".join(g["hash"] for g in j["generation"]) or "-",
        }
        for j in jobs
    ]
    return pd.DataFrame(rows).to_markdown(index=False)


def generation_preflight(cfg: DictConfig, gen: dict, cache_dir: Path, out_dir: str | Path) -> bool:
    """generate.py before it makes anything. dry_run=true: prices the generation of `gen` and lists
    what paper mode lacks (cost.md, printed); True: nothing more to do. Otherwise a paper-mode run
    that lacks a prerequisite stops here (ConfigError naming each)."""
    missing = generation_prerequisites(cfg, cache_dir)
    if cfg.dry_run:
        print(write_generation_cost(gen, plain(cfg.cost), cache_dir, out_dir, as_records(missing)).read_text())
        return True
    require(missing)
    return False


def write_cost_report(sweep_dir: str | Path) -> Path:
    """The sweep's cost.md and cost_summary.json from its jobs' cost.json."""
    sweep_dir = Path(sweep_dir)
    jobs = [json.loads(p.read_text()) | {"job": p.parent.name} for p in sorted(sweep_dir.glob("*/cost.json"))]
    if not jobs:
        raise FileNotFoundError(f"{sweep_dir}: no */cost.json (was the sweep run with dry_run=true?)")
    gens = {g["hash"]: g for j in jobs for g in j["generation"]}  # each generation is made once
    missing, lacking = _sweep_missing(jobs)
    gen_h = sum(g["gpu_h"] for g in gens.values())
    train_h = sum(j["train_gpu_h"] for j in jobs if j["train_gpu_h"] is not None)
    unknown = sum(j["train_gpu_h"] is None for j in jobs)
    lines = [
        f"# Cost preview: {sweep_dir.name}",
        "",
        f"{len(jobs)} training jobs, {len(gens)} distinct "
        f"generation configs ({sum(g['exists'] for g in gens.values())} already generated).",
        "",
        _job_table(jobs),
        "",
        "Train rows of a SynCXR dataset: its planned samples less those held out for validation "
        "(`generation.val_fraction`); samples dropped at an attempt cap are not known in advance.",
        "",
        "Generation, per stage:",
        "",
        stage_table(list(gens.values())),
        "",
        f"**Generation: {gen_h:.1f} GPU-h; training: {train_h:.1f} GPU-h; total: {gen_h + train_h:.1f} GPU-h.**",
        *(
            [
                "",
                f"**{unknown} job(s) train on a dataset whose rows cannot be counted without building it "
                "(MIMIC-CXR without `MIMIC_CXR_ROOT` / `real_corpus.root`): their training GPU-h are unknown "
                "and not in the totals** (or set `cost.unknown_dataset_rows=<rows>`).",
            ]
            if unknown
            else []
        ),
        "",
        "Per-item costs come from `conf/cost/`; phantom and existing datasets cost nothing to generate.",
        *missing_section(missing, lacking),
    ]
    path = sweep_dir / "cost.md"
    write_text_atomic(path, "\n".join(lines))
    summary = {"jobs": len(jobs), "generation_gpu_h": gen_h, "train_gpu_h": train_h, "jobs_with_unknown_rows": unknown}
    write_json_atomic(sweep_dir / "cost_summary.json", {**summary, "missing_prerequisites": missing})
    return path
