"""Cost preview of a sweep: `python train.py -m ... dry_run=true` lists the jobs and estimates
GPU-hours for generation (once per distinct generation config) and training, launching nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..data.dataset_format import config_hash, write_json_atomic
from ..data.durable import write_text_atomic


def _rows(spec: dict, cost: dict) -> tuple[int, dict | None]:
    """(training rows, generation config or None) of one dataset spec, without building anything."""
    if spec is None:
        return 0, None
    if spec["builder"] == "phantom":
        return int(spec["n"]), None
    if spec["builder"] == "generated":
        return int(spec["generation"]["n_samples"]), spec["generation"]
    if spec["builder"] == "partial":  # one new report or image per real row
        return _rows(spec["real"], cost)[0], None
    if spec["builder"] == "mimic_cxr":
        return _mimic_rows(spec, cost), None
    path = Path(spec["path"]) / "manifest.parquet"
    if path.is_file():
        import pyarrow.parquet as pq
        return pq.ParquetFile(path).metadata.num_rows, None
    return int(cost.get("unknown_dataset_rows", 0)), None


def _mimic_rows(spec: dict, cost: dict) -> int:
    """Images of the kept views in the MIMIC-CXR metadata (an upper bound: unpaired rows drop later)."""
    meta = Path(str(spec.get("root"))) / "mimic-cxr-2.0.0-metadata.csv"
    for candidate in (meta, meta.with_name(meta.name + ".gz")):
        if candidate.is_file():
            views = pd.read_csv(candidate, usecols=["ViewPosition"])["ViewPosition"]
            return int(views.isin(list(spec.get("views") or ["PA", "AP"])).sum())
    return int(cost.get("unknown_dataset_rows", 0))


def _partial_gpu_s(spec: dict | None, cost: dict) -> float:
    """GPU-seconds to make a partially synthetic set: one i2r report or one T2I image per real row."""
    if not spec or spec.get("builder") != "partial":
        return 0.0
    rows = _rows(spec["real"], cost)[0]
    if spec["kind"] == "real_image_syn_report":
        backend = spec["i2r"]["backend"]
        return 0.0 if backend == "oracle" else rows * cost["llm_gpu_s_per_report"]["default"]
    t2i = spec["imagegen"]
    return 0.0 if t2i["backend"] in ("phantom", "randomized") else rows * cost["t2i_gpu_s_per_image"].get(
        t2i["name"], cost["t2i_gpu_s_per_image"]["default"])


def estimate_job(cfg: dict, cost: dict, cache_dir: Path) -> dict:
    """GPU-hours of one job from per-item costs (`conf/cost/*.yaml`)."""
    from ..generation.generation_job import generated_dir, is_phantom

    data = cfg["data"]
    rows, gens = 0, []
    for part in ("real", "syn"):
        n, gen = _rows(data.get(part), cost)
        rows += n
        if gen is not None:
            gens.append(gen)
    if data.get("syn_fraction") is not None and data.get("real") and data.get("syn"):
        rows = _rows(data["real"], cost)[0]
    samples = rows * cfg["trainer"]["max_epochs"]
    if cfg["trainer"].get("max_steps") is not None:
        samples = min(samples, cfg["trainer"]["max_steps"] * cfg["loader"]["batch_size"])
    per_sample = cost["train_gpu_s_per_sample"].get(cfg["model"]["name"], cost["train_gpu_s_per_sample"]["default"])
    scale = (cfg["loader"]["image_size"] / 224) ** 2  # convolutional cost grows with the pixel count
    out = {"model": cfg["model"]["name"], "data": data["name"], "seed": cfg["seed"], "train_rows": rows,
           "train_gpu_h": samples * per_sample * scale / 3600, "generation": []}
    for part in ("real", "syn"):
        spec = data.get(part)
        if spec and spec.get("builder") == "partial":
            g = _partial_gpu_s(spec, cost) / 3600
            out["generation"].append({"hash": f"{spec['kind']}-{config_hash(spec)[:8]}", "gpu_h": g, "exists": False, "phantom": g == 0.0})
    for gen in gens:
        target = generated_dir(gen, cache_dir)
        h = target.name.removeprefix("syncxr-")
        exists = (target / "manifest.parquet").is_file()
        free = is_phantom(gen) or exists
        g_cost = 0.0 if free else gen["n_samples"] * (
            cost["llm_gpu_s_per_report"].get(gen["llm"]["name"], cost["llm_gpu_s_per_report"]["default"])
            + cost["t2i_gpu_s_per_image"].get(gen["imagegen"]["name"], cost["t2i_gpu_s_per_image"]["default"])
            + cost["curation_gpu_s_per_image"]) / 3600
        out["generation"].append({"hash": h, "gpu_h": g_cost, "exists": exists, "phantom": is_phantom(gen)})
    return out


def write_cost_report(sweep_dir: str | Path) -> Path:
    sweep_dir = Path(sweep_dir)
    jobs = [json.loads(p.read_text()) | {"job": p.parent.name} for p in sorted(sweep_dir.glob("*/cost.json"))]
    if not jobs:
        raise FileNotFoundError(f"{sweep_dir}: no */cost.json (was the sweep run with dry_run=true?)")
    gens = {g["hash"]: g for j in jobs for g in j["generation"]}  # each generation is made once
    table = pd.DataFrame([{"job": j["job"], "model": j["model"], "data": j["data"], "seed": j["seed"],
                           "train rows": j["train_rows"], "train GPU-h": round(j["train_gpu_h"], 2),
                           "generation": ",".join(g["hash"] for g in j["generation"]) or "-"} for j in jobs])
    gen_h = sum(g["gpu_h"] for g in gens.values())
    train_h = sum(j["train_gpu_h"] for j in jobs)
    lines = [f"# Cost preview: {sweep_dir.name}", "", f"{len(jobs)} training jobs, {len(gens)} distinct "
             f"generation configs ({sum(g['exists'] for g in gens.values())} already generated).", "",
             table.to_markdown(index=False), "",
             f"**Generation: {gen_h:.1f} GPU-h; training: {train_h:.1f} GPU-h; total: {gen_h + train_h:.1f} GPU-h.**",
             "", "Per-item costs come from `conf/cost/`; phantom and existing datasets cost nothing to generate."]
    path = sweep_dir / "cost.md"
    write_text_atomic(path, "\n".join(lines))
    write_json_atomic(sweep_dir / "cost_summary.json", {"jobs": len(jobs), "generation_gpu_h": gen_h,
                                                        "train_gpu_h": train_h})
    return path
