"""Generation priced per stage (LLM reports, T2I images, curation) from per-item costs the user can
override: generate.py dry_run=true and the cost.md of a training sweep."""

from __future__ import annotations

import json

import pytest

from syncxr.config import plain
from syncxr.generation.generation_job import generated_dir, generation_config
from syncxr.results.cost import estimate_job, generation_stages, write_cost_report, write_generation_cost
from tests.helpers import compose_config, compose_train, run_cli

PAPER = ["generation.n_samples=200000", "llm=llama31_70b", "imagegen=roentgen", "curation=paper", "curation.bad_bank=/data/bad"]


def test_each_stage_is_priced_from_its_per_item_cost():
    cfg = compose_config("generate", PAPER + ["cost.images_per_sample=1.5", "cost.t2i_gpu_s_per_image.roentgen=2.0"])
    stages = generation_stages(generation_config(cfg.generation), plain(cfg.cost))
    assert stages["llm"] == pytest.approx(200000 * 4.0 / 3600)  # llama31_70b's own per-report cost
    assert stages["t2i"] == pytest.approx(200000 * 1.5 * 2.0 / 3600)  # the override, per drawn image
    assert stages["curation"] == pytest.approx(200000 * 1.5 * 0.3 / 3600)
    phantom = compose_config("generate")
    free = {"llm": 0.0, "t2i": 0.0, "curation": 0.0}
    assert generation_stages(generation_config(phantom.generation), plain(phantom.cost)) == free


def test_generation_cost_preview_shows_the_stages(tmp_path):
    cfg = compose_config("generate", PAPER)
    md = write_generation_cost(generation_config(cfg.generation), plain(cfg.cost), tmp_path / "cache", tmp_path).read_text()
    assert all(h in md for h in ("LLM reports GPU-h", "T2I images GPU-h", "curation GPU-h", "total GPU-h"))
    llm, t2i, cur = 200000 * 4.0 / 3600, 200000 * 1.2 * 1.5 / 3600, 200000 * 1.2 * 0.3 / 3600
    assert f"From scratch: {llm + t2i + cur:.1f} GPU-h" in md
    saved = json.loads((tmp_path / "cost.json").read_text())
    assert saved["from_scratch"]["t2i"] == pytest.approx(t2i) and saved["exists"] is False


def test_a_sweeps_cost_report_lists_generation_stages(tmp_path):
    cfg = plain(compose_train(["data=syn", "llm=llama31_8b", "imagegen=roentgen", "generation.n_samples=3600"]))
    job = estimate_job(cfg, cfg["cost"], tmp_path / "cache")
    (gen,) = job["generation"]
    assert gen["stages"]["llm"] == pytest.approx(3600 * 0.5 / 3600) and gen["stages"]["curation"] == 0.0
    assert gen["gpu_h"] == pytest.approx(sum(gen["stages"].values()))
    (tmp_path / "job0").mkdir()
    (tmp_path / "job0" / "cost.json").write_text(json.dumps(job))
    text = write_cost_report(tmp_path).read_text()
    assert "LLM reports GPU-h" in text and "T2I images GPU-h" in text and gen["hash"] in text


@pytest.mark.slow
def test_generate_py_dry_run_makes_nothing(cache_dir, tmp_path):
    proc = run_cli([*PAPER, "dry_run=true", f"hydra.run.dir={tmp_path / 'run'}"], cache_dir, tmp_path,
                   script="generate.py")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert "Generation cost preview" in out and (tmp_path / "run" / "cost.md").is_file()
    target = generated_dir(generation_config(compose_config("generate", PAPER).generation), cache_dir)
    assert target.name in out and not target.exists()
