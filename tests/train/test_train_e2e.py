"""End-to-end training runs: learning, determinism, kill-and-resume and a multirun."""

from __future__ import annotations

import json
import signal
import time

import pandas as pd
import pytest
from omegaconf import OmegaConf

from syncxr.train.training_job import run_training
from tests.figures import recorded_figures
from tests.helpers import TINY, compose_train, run_cli

pytestmark = pytest.mark.slow


def test_same_seed_twice_gives_identical_metrics(cache_dir, tmp_path):
    cfg = compose_train(TINY)
    with recorded_figures() as figures:
        a = run_training(cfg, tmp_path / "a")
    b = run_training(cfg, tmp_path / "b")
    assert (tmp_path / "a" / "metrics.json").read_text() == (tmp_path / "b" / "metrics.json").read_text()
    assert a["train/steps"] == 3 * (a["data/train_rows"] // 16)
    assert {
        "zeroshot_cls/chexpert/auc",
        "zeroshot_cls/chexpert/f1",
        "zeroshot_cls/chexpert/acc",
        "zeroshot_cls/chexpert/pleural_effusion/auc",
        "zeroshot_cls/chexpert/edema/f1",
    } <= set(a)
    # loss.png: one curve, every logged step's loss (log_every=1).
    history = [json.loads(line) for line in (tmp_path / "a" / "history.jsonl").read_text().splitlines()]
    (ax,) = figures["loss.png"].axes
    (line,) = ax.get_lines()
    assert list(line.get_xdata()) == [h["step"] for h in history] == list(range(1, a["train/steps"] + 1))
    assert list(line.get_ydata()) == [h["loss"] for h in history]
    c = run_training(compose_train(TINY + ["seed=1"]), tmp_path / "c")
    assert c != b


def test_killed_mid_epoch_resumes_from_last_checkpoint(cache_dir, tmp_path):
    ref = run_training(compose_train(TINY + ["trainer.max_epochs=4"]), tmp_path / "ref")
    run_dir = tmp_path / "killed"
    args = [
        *TINY,
        "trainer.max_epochs=4",
        "trainer.checkpoint_every=2",
        "trainer.keep_checkpoints=10",
        f"hydra.run.dir={run_dir}",
    ]
    proc = run_cli(args, cache_dir, tmp_path)
    deadline = time.time() + 300
    ckpts = run_dir / "checkpoints"
    while time.time() < deadline and proc.poll() is None:
        done = [p for p in ckpts.glob("step_*") if (p / "trainer_state.json").is_file()] if ckpts.is_dir() else []
        states = [json.loads((p / "trainer_state.json").read_text()) for p in done]
        # Mid-epoch, past the first epoch: the resumed epoch's order must come from its own seed.
        if any(st["step_in_epoch"] > 0 and st["epoch"] >= 1 for st in states):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "training finished before it could be killed:\n" + proc.stdout.read()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "metrics.json").exists()
    killed_at = max(int(p.name.split("_")[1]) for p in ckpts.glob("step_*"))
    again = run_cli(args, cache_dir, tmp_path)
    out, _ = again.communicate(timeout=600)
    assert again.returncode == 0, out
    assert "resuming from" in out
    resumed = json.loads((run_dir / "metrics.json").read_text())
    assert killed_at < resumed["train/steps"]
    # Resuming loses and repeats nothing: the result is that of an uninterrupted run.
    assert resumed == ref
    steps = [json.loads(line)["step"] for line in (run_dir / "history.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) == list(range(1, resumed["train/steps"] + 1))


def test_multirun_over_data_runs_three_jobs(cache_dir, tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "data=syn,real,mix", *TINY, "trainer.max_steps=2", f"hydra.sweep.dir={sweep}"]
    proc = run_cli(args, cache_dir, tmp_path)
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out
    metrics = {p.parent: json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")}
    assert len(metrics) == 3, sorted(metrics)
    rows = {OmegaConf.load(d / "resolved_config.yaml").data.name: m["data/train_rows"] for d, m in metrics.items()}
    assert rows["mix"] == rows["syn"] + rows["real"]
    # The sweep callback summarised the jobs.
    results = pd.read_csv(sweep / "results.csv")
    assert sorted(results["data"]) == ["mix", "real", "syn"] and (results["status"] == "ok").all()
    assert "zeroshot_cls/chexpert/auc" in (sweep / "report.md").read_text()


def test_bad_config_values_fail_with_the_key_named(cache_dir, tmp_path):
    with pytest.raises(ValueError, match="trainer.precision"):
        run_training(compose_train(TINY + ["trainer.precision=fp8"]), tmp_path / "p")
    with pytest.raises(ValueError, match="data.syn"):
        run_training(compose_train(TINY + ["+data.syn.colour=red"]), tmp_path / "q")
    with pytest.raises(ValueError, match="syn_fraction"):
        run_training(compose_train(["data=mix", "data.syn_fraction=2.0", *TINY]), tmp_path / "r")


def test_resuming_another_config_in_the_same_dir_is_refused(cache_dir, tmp_path):
    out = tmp_path / "run"
    run_training(compose_train(TINY + ["trainer.max_steps=2"]), out)
    with pytest.raises(
        ValueError,
        match=r"checkpoints of another config \(loader.batch_size, .*seed differ from "
        r".*step_00000002/run_config.json\)",
    ):
        run_training(compose_train(TINY + ["trainer.max_steps=2", "seed=1", "loader.batch_size=8"]), out)
    # A new evaluation suite or log cadence is the same run: it resumes (0 steps left) and re-evaluates.
    again = run_training(compose_train(TINY + ["trainer.max_steps=2", "trainer.log_every=5"]), out)
    assert again["train/steps"] == 2
    fresh = run_training(compose_train(TINY + ["trainer.max_steps=2", "seed=1", "trainer.resume=false"]), out)
    assert fresh["train/steps"] == 2 and fresh != again
