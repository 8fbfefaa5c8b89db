"""Generation priced per stage (LLM reports, T2I images, curation) from per-item costs the user can
override: generate.py dry_run=true and the cost.md of a training sweep."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from syncxr.config import plain
from syncxr.generation.generation_job import generated_dir, generation_config
from syncxr.results.cost import estimate_job, generation_stages, trained_rows, write_cost_report, write_generation_cost
from tests.helpers import compose_config, compose_train, run_cli

PAPER = [
    "generation.n_samples=200000",
    "llm=llama31_70b",
    "imagegen=roentgen",
    "curation=paper",
    "curation.bad_bank=/data/bad",
]


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
    md = write_generation_cost(
        generation_config(cfg.generation), plain(cfg.cost), tmp_path / "cache", tmp_path
    ).read_text()
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
    proc = run_cli(
        [*PAPER, "dry_run=true", f"hydra.run.dir={tmp_path / 'run'}"], cache_dir, tmp_path, script="generate.py"
    )
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert "Generation cost preview" in out and (tmp_path / "run" / "cost.md").is_file()
    target = generated_dir(generation_config(compose_config("generate", PAPER).generation), cache_dir)
    assert target.name in out and not target.exists()


def markdown_rows(text: str, first_header: str) -> list[dict]:
    """The rows of the markdown table of `text` whose first column is `first_header`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} "))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, (c.strip() for c in line.strip("|").split("|")))))
    return rows


@pytest.mark.slow
def test_a_dry_run_sweeps_cost_md_has_the_figures_worked_out_by_hand(tmp_path):
    """train.py -m dry_run=true over {syn, mix} x {template, llama31_8b} x {phantom, roentgen}: each
    figure of cost.md against the per-item costs of conf/cost worked out here."""
    n_gen, n_real, epochs, max_steps, size = 36000, 9000, 10, 5000, 448
    fixed = [
        f"generation.n_samples={n_gen}",
        f"phantom.n={n_real}",
        "data.syn_fraction=0.5",
        f"trainer.max_epochs={epochs}",
        f"trainer.max_steps={max_steps}",
        f"loader.image_size={size}",
    ]
    cache, sweep = tmp_path / "cache", tmp_path / "sweep"
    # The template-LLM + RoentGen dataset exists already: it costs nothing to make.
    existing = generation_config(compose_train(["llm=template", "imagegen=roentgen", *fixed]).generation)
    generated_dir(existing, cache).mkdir(parents=True)
    (generated_dir(existing, cache) / "manifest.parquet").write_bytes(b"")
    proc = run_cli(
        [
            "-m",
            "dry_run=true",
            "data=syn,mix",
            "llm=template,llama31_8b",
            "imagegen=phantom,roentgen",
            *fixed,
            f"hydra.sweep.dir={sweep}",
        ],
        cache,
        tmp_path,
    )
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    made = sorted(p.relative_to(cache) for p in cache.rglob("*") if p.is_file())
    assert made == [generated_dir(existing, cache).relative_to(cache) / "manifest.parquet"], made  # nothing made
    assert not list(sweep.glob("*/metrics.json"))  # nor trained

    c = plain(compose_config("train").cost)
    batch = 32  # loader.batch_size of conf/train.yaml
    per_sample = c["train_gpu_s_per_sample"]["convirt"]
    scale = (size / 224) ** 2  # 4: the cost grows with the pixel count
    # syn: 36,000 rows x 10 epochs, capped at 5,000 steps x 32 = 160,000 samples.
    # mix at syn_fraction 0.5: real-sized, 9,000 rows x 10 epochs = 90,000 samples (under the cap).
    assert max_steps * batch < n_gen * epochs and n_real * epochs < max_steps * batch
    train_h = {"syn": max_steps * batch * per_sample * scale / 3600, "mix": n_real * epochs * per_sample * scale / 3600}
    assert train_h == pytest.approx({"syn": 0.71111, "mix": 0.4}, abs=1e-4)  # (at conf/cost's 0.004 s)
    llm_h = n_gen * c["llm_gpu_s_per_report"]["llama31_8b"] / 3600  # 5.0
    t2i_h = n_gen * c["images_per_sample"] * c["t2i_gpu_s_per_image"]["roentgen"] / 3600  # 18.0
    expected_gen = {
        ("template", "phantom"): (0.0, 0.0, "phantom (CPU)"),
        ("llama31_8b", "phantom"): (llm_h, 0.0, "to make"),
        ("template", "roentgen"): (0.0, 0.0, "exists"),
        ("llama31_8b", "roentgen"): (llm_h, t2i_h, "to make"),
    }

    text = (sweep / "cost.md").read_text()
    jobs = {r["job"]: r for r in markdown_rows(text, "job")}
    gens = {r["generation"]: r for r in markdown_rows(text, "generation")}
    assert len(jobs) == 8 and len(gens) == 4, text
    seen = {}
    for job_dir in sweep.iterdir():
        if not (job_dir / "cost.json").is_file():
            continue
        choice = dict(o.split("=", 1) for o in OmegaConf.load(job_dir / ".hydra" / "overrides.yaml"))
        data, key = choice["data"], (choice["llm"], choice["imagegen"])
        row = jobs[job_dir.name]
        # syn: the generated rows less those held out for validation (val_fraction), counted in advance.
        assert (
            int(row["train rows"])
            == {"syn": trained_rows(generation_config(compose_train(fixed).generation)), "mix": n_real}[data]
        ), row
        assert float(row["train GPU-h"]) == round(train_h[data], 2), row
        assert json.loads((job_dir / "cost.json").read_text())["train_gpu_h"] == pytest.approx(train_h[data])
        llm, t2i, status = expected_gen[key]
        gen = gens[row["generation"]]
        assert (
            float(gen["LLM reports GPU-h"]),
            float(gen["T2I images GPU-h"]),
            float(gen["curation GPU-h"]),
            float(gen["total GPU-h"]),
            gen["status"],
        ) == (llm, t2i, 0.0, llm + t2i, status), (key, gen)
        assert seen.setdefault(key, row["generation"]) == row["generation"]  # syn and mix share it
    assert len(seen) == 4
    total_gen, total_train = 2 * llm_h + t2i_h, 4 * train_h["syn"] + 4 * train_h["mix"]  # 28.0, 4.4
    assert (
        f"**Generation: {total_gen:.1f} GPU-h; training: {total_train:.1f} GPU-h; "
        f"total: {total_gen + total_train:.1f} GPU-h.**"
    ) in text
    assert "8 training jobs, 4 distinct generation configs (1 already generated)." in text
