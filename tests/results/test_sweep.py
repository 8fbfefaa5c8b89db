import json

import pandas as pd
import pytest
import yaml

from syncxr.results.__main__ import main as report_main
from syncxr.results.sweep import collect, write_report

AUC = "zeroshot_cls/chexpert/auc"


def _job(root, name, overrides, metrics=None):
    d = root / name
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if metrics is not None:
        (d / "metrics.json").write_text(json.dumps(metrics))


@pytest.fixture
def sweep(tmp_path):
    values = {
        ("real", 0): 0.60,
        ("real", 1): 0.62,
        ("syn", 0): 0.70,
        ("syn", 1): 0.66,
        ("mix", 0): 0.75,
        ("mix", 1): 0.77,
    }  # mix - real: 15 in both seeds, mix - syn: 5 and 11
    for (data, seed), auc in values.items():
        _job(
            tmp_path,
            f"data={data},seed={seed}",
            [f"data={data}", f"seed={seed}", "model=convirt"],
            {AUC: auc, "zeroshot_cls/chexpert/edema/auc": auc},
        )
    _job(tmp_path, "data=mix,seed=2", ["data=mix", "seed=2", "model=convirt"])  # crashed: no metrics
    return tmp_path


def test_collect_keeps_failed_jobs_as_rows(sweep):
    df = collect(sweep)
    assert len(df) == 7
    assert df.loc[df["status"] == "failed", "job"].tolist() == ["data=mix,seed=2"]
    assert set(df["seed"]) == {0, 1, 2}


def test_report_tables_mean_std_and_claims(sweep):
    csv, md = write_report(sweep)
    assert len(pd.read_csv(csv)) == 7
    text = md.read_text()
    assert "61.00 ± 1.41" in text  # real: mean 0.61, std 0.0141
    assert "68.00 ± 2.83" in text  # syn
    assert "1 failed" in text and "data=mix,seed=2" in text
    # Whole claim lines (issue 16): per-seed differences syn - real 10 and 4, mix - syn 5 and 11 points;
    # without per-image predictions the bootstrap resamples seeds: means of 2 draws.
    lines = text.splitlines()
    assert (
        "- convirt, zero-shot, seen diseases, mean AUC over CheXpert: syn > real by +7.00 points, 95% CI "
        "[+4.00, +10.00] (bootstrap over seeds only: no per-image predictions; syn ahead in 2/2 paired runs). "
        "Paper: syn > real by +7.39 (Table 1, same models and datasets). Agrees with the paper."
    ) in lines
    assert (
        "- convirt, zero-shot, seen diseases, mean AUC over CheXpert: mix > syn by +8.00 points, 95% CI "
        "[+5.00, +11.00] (bootstrap over seeds only: no per-image predictions; mix ahead in 2/2 paired runs). "
        "Paper: mix > syn by +12.05 (Table 1, same models and datasets). Agrees with the paper."
    ) in lines
    assert "| convirt | real |" in text.replace("  ", " ").replace("  ", " ")  # model and data as columns
    assert "Paper mode" not in text and "(paper " not in text  # the phantom default: no published values


def test_cli_and_missing_dir(sweep, tmp_path, capsys):
    report_main([str(sweep)])
    assert "report.md" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="no jobs"):
        collect(tmp_path / "empty")
    with pytest.raises(SystemExit):
        report_main([])


def test_cost_preview_counts_each_generation_once(tmp_path):
    from syncxr.results.cost import write_cost_report

    gen = {"hash": "abc", "gpu_h": 5.0, "exists": False, "phantom": False}
    for i, model in enumerate(["convirt", "gloria"]):
        d = tmp_path / f"job{i}"
        d.mkdir()
        (d / "cost.json").write_text(
            json.dumps(
                {"model": model, "data": "syn", "seed": 0, "train_rows": 100, "train_gpu_h": 1.5, "generation": [gen]}
            )
        )
    text = write_cost_report(tmp_path).read_text()
    assert "Generation: 5.0 GPU-h; training: 3.0 GPU-h; total: 8.0 GPU-h" in text
    with pytest.raises(FileNotFoundError, match="dry_run"):
        write_cost_report(tmp_path / "job0")


class _FakeRun:
    def __init__(self, **kw):
        self.kw, self.logged, self.finished, self.id = kw, {}, False, kw["id"]

    def log(self, data):
        self.logged.update(data)

    def finish(self, exit_code=0):
        self.finished = True


def test_report_goes_to_wandb_as_table_text_and_images(sweep, monkeypatch):
    import wandb

    runs = []
    monkeypatch.setattr(wandb, "init", lambda **kw: runs.append(_FakeRun(**kw)) or runs[-1])
    (sweep / "multirun.yaml").write_text(
        yaml.safe_dump({"logger": {"name": "wandb", "project": "p", "mode": "offline"}})
    )
    (sweep / "seed_axis").mkdir()  # not a job: ignored
    report_main([str(sweep), "--wandb"])
    run = runs[0]
    assert run.finished and run.kw["job_type"] == "report" and run.kw["group"] == sweep.name
    assert run.kw["project"] == "p" and run.kw["mode"] == "offline"
    table = run.logged["sweep/results"]
    assert isinstance(table, wandb.Table) and len(table.data) == 7
    assert "status" in table.columns and AUC in table.columns
    assert isinstance(run.logged["sweep/report"], wandb.Html)
    assert [k for k in run.logged if k.startswith("sweep/plots/")] == ["sweep/plots/data"]
    # The paper-shaped tables and the claims go to the report run as tables.
    assert isinstance(run.logged["sweep/tables/table1"], wandb.Table)
    assert run.logged["sweep/tables/table1"].get_column("CheXpert AUC")[0] == "61.00 ± 1.41"
    assert len(run.logged["sweep/tables/claims"].data) == 3
    # Offline: the W&B Report spec is saved for later, and report.md says how to publish it.
    assert (sweep / "wandb_report.json").is_file() and "--publish" in (sweep / "report.md").read_text()
    # Re-writing the report logs to the same W&B run.
    report_main([str(sweep), "--wandb"])
    assert runs[1].kw["id"] == run.kw["id"]


def test_report_without_logger_does_not_touch_wandb(sweep, monkeypatch):
    import wandb

    monkeypatch.setattr(wandb, "init", lambda **kw: pytest.fail("W&B used without logger=wandb"))
    write_report(sweep, {"name": "none"})
    report_main([str(sweep)])


@pytest.mark.slow
def test_report_logs_to_an_offline_wandb_run(sweep):
    from syncxr.results.wandb_logger import run_id

    write_report(sweep, {"name": "wandb", "project": "syncxr", "mode": "offline"})
    runs = list((sweep / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and runs[0].name.endswith(run_id(sweep / "report"))
    assert list(runs[0].rglob("*.wandb"))


def _cost():
    return {
        "llm_gpu_s_per_report": {"default": 2.0},
        "t2i_gpu_s_per_image": {"default": 3.0},
        "images_per_sample": 1.0,
        "curation_gpu_s_per_image": 0.0,
        "train_gpu_s_per_sample": {"default": 0.0},
        "unknown_dataset_rows": 0,
    }


def _job_cfg(data):
    return {
        "data": data,
        "model": {"name": "convirt"},
        "seed": 0,
        "trainer": {"max_epochs": 1, "max_steps": None},
        "loader": {"image_size": 224, "batch_size": 8},
    }


def test_cost_of_partially_synthetic_and_mimic_data(tmp_path):
    from syncxr.results.cost import estimate_job

    real = {"builder": "phantom", "n": 360}
    syn_report = {
        "builder": "partial",
        "kind": "real_image_syn_report",
        "real": real,
        "i2r": {"backend": "transformers", "phantom_world": False},
    }
    job = estimate_job(_job_cfg({"name": "x", "syn": syn_report}), _cost(), tmp_path)
    assert job["train_rows"] == 360 and job["generation"][0]["gpu_h"] == pytest.approx(360 * 2.0 / 3600)
    oracle = dict(syn_report, i2r={"backend": "oracle", "phantom_world": True})
    assert estimate_job(_job_cfg({"name": "x", "syn": oracle}), _cost(), tmp_path)["generation"][0]["gpu_h"] == 0
    syn_image = {
        "builder": "partial",
        "kind": "syn_image_real_report",
        "real": real,
        "imagegen": {"backend": "diffusers", "name": "roentgen", "phantom_world": False},
    }
    job = estimate_job(_job_cfg({"name": "x", "syn": syn_image}), _cost(), tmp_path)
    assert job["generation"][0]["gpu_h"] == pytest.approx(360 * 3.0 / 3600)
    pd.DataFrame({"ViewPosition": ["PA", "AP", "LATERAL", None, "PA"]}).to_csv(
        tmp_path / "mimic-cxr-2.0.0-metadata.csv", index=False
    )
    mimic = {"builder": "mimic_cxr", "root": str(tmp_path), "views": ["PA", "AP"]}
    assert estimate_job(_job_cfg({"name": "x", "real": mimic}), _cost(), tmp_path)["train_rows"] == 3


def test_mimic_rows_that_cannot_be_counted_are_unknown_not_zero(tmp_path):
    """Without MIMIC-CXR's metadata the real rows of a job are unknown: cost.md says so and leaves
    them out of the totals, instead of pricing the job's training at nothing."""
    from syncxr.results.cost import estimate_job, write_cost_report

    cost = {**_cost(), "unknown_dataset_rows": None, "train_gpu_s_per_sample": {"default": 3.6}}
    mimic = {"builder": "mimic_cxr", "root": str(tmp_path / "nowhere"), "views": ["PA", "AP"]}
    unknown = estimate_job(_job_cfg({"name": "real", "real": mimic}), cost, tmp_path)
    assert unknown["train_rows"] is None and unknown["train_gpu_h"] is None
    known = estimate_job(_job_cfg({"name": "syn", "real": {"builder": "phantom", "n": 1000}}), cost, tmp_path)
    assert known["train_gpu_h"] == pytest.approx(1000 * 3.6 / 3600)  # 1,000 rows x 1 epoch x 3.6 s
    for name, job in (("real", unknown), ("syn", known)):
        (tmp_path / "sweep" / name).mkdir(parents=True)
        (tmp_path / "sweep" / name / "cost.json").write_text(json.dumps(job))
    text = write_cost_report(tmp_path / "sweep").read_text()
    assert "| unknown" in text and "training: 1.0 GPU-h" in text
    assert "1 job(s) train on a dataset whose rows cannot be counted" in text
    with_guess = estimate_job(
        _job_cfg({"name": "real", "real": mimic}), {**cost, "unknown_dataset_rows": 500}, tmp_path
    )
    assert with_guess["train_rows"] == 500
