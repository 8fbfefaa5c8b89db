"""End-to-end training runs: learning, determinism, kill-and-resume and a multirun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from syncxr.train.run import run_training

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

# A run small enough for seconds on 2 cores: tiny images, tiny text tower, tiny test set.
TINY = [
    "phantom.n=96", "phantom.image_size=64", "generation.n_samples=96", "generation.shard_size=96",
    "corpus.n=200", "corpus.image_size=64", "imagegen.image_size=64",
    "loader.image_size=48", "loader.batch_size=16",
    "text_encoder.phantom.hidden_size=32", "text_encoder.phantom.num_layers=1",
    "text_encoder.phantom.num_heads=2", "text_encoder.phantom.intermediate_size=64",
    "text_encoder.phantom.vocab_size=400", "eval.zeroshot_cls.chexpert.benchmark.n_test=60",
    "eval.zeroshot_cls.chexpert.benchmark.n_valid=40",
    "model.proj_dim=16", "model.proj_hidden=32", "trainer.max_epochs=3", "trainer.log_every=1",
]


def compose_train(overrides):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def run_cli(args, cache_dir, out_root, **kw):
    env = {**os.environ, "SYNCXR_CACHE": str(cache_dir), "SYNCXR_OUTPUTS": str(out_root)}
    return subprocess.Popen([sys.executable, str(REPO / "train.py"), *args], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def test_same_seed_twice_gives_identical_metrics(cache_dir, tmp_path):
    cfg = compose_train(TINY)
    a = run_training(cfg, tmp_path / "a")
    b = run_training(cfg, tmp_path / "b")
    assert (tmp_path / "a" / "metrics.json").read_text() == (tmp_path / "b" / "metrics.json").read_text()
    assert a["train/steps"] == 3 * (a["data/train_rows"] // 16)
    assert {"zeroshot_cls/chexpert/auc", "zeroshot_cls/chexpert/f1", "zeroshot_cls/chexpert/acc",
            "zeroshot_cls/chexpert/pleural_effusion/auc", "zeroshot_cls/chexpert/edema/f1"} <= set(a)
    assert (tmp_path / "a" / "loss.png").is_file()
    c = run_training(compose_train(TINY + ["seed=1"]), tmp_path / "c")
    assert c != b


def test_killed_mid_epoch_resumes_from_last_checkpoint(cache_dir, tmp_path):
    ref = run_training(compose_train(TINY + ["trainer.max_epochs=4"]), tmp_path / "ref")
    run_dir = tmp_path / "killed"
    args = [*TINY, "trainer.max_epochs=4", "trainer.checkpoint_every=2", "trainer.keep_checkpoints=10",
            f"hydra.run.dir={run_dir}"]
    proc = run_cli(args, cache_dir, tmp_path)
    deadline = time.time() + 300
    ckpts = run_dir / "checkpoints"
    while time.time() < deadline and proc.poll() is None:
        done = [p for p in ckpts.glob("step_*") if (p / "trainer_state.json").is_file()] if ckpts.is_dir() else []
        if any(json.loads((p / "trainer_state.json").read_text())["step_in_epoch"] > 0 for p in done):
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
    metrics = {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")}
    assert len(metrics) == 3, sorted(metrics)
    rows = {name.split("data=")[1].split(",")[0].split("-")[0]: m["data/train_rows"] for name, m in metrics.items()}
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


# Smaller than the default (64 px, half the data) but the same recipe; about a minute on 2 cores.
BUDGET = ["phantom.image_size=64", "generation.n_samples=1500", "corpus.image_size=64",
          "imagegen.image_size=64", "loader.image_size=64", "trainer.max_epochs=8",
          "eval.zeroshot_cls.chexpert.benchmark.n_test=300",
          "eval.zeroshot_cls.chexpert.benchmark.n_valid=100"]
# What the BUDGET recipe reaches: mean AUC 0.781 / 0.774 / 0.715 for seeds 0 / 1 / 2 here, 0.732 for
# seed 0 on the CI machine (its float kernels differ, so training takes another path); untrained it
# scores 0.4-0.6. The floor leaves room for that spread and still separates the two.
BUDGET_MIN_AUC = 0.66


def test_pretraining_learns_what_untrained_cannot(trained_run, tmp_path):
    untrained = run_training(compose_train(BUDGET + ["trainer.max_steps=0"]), tmp_path / "untrained")
    trained = json.loads((trained_run / "metrics.json").read_text())  # the BUDGET recipe, trained once
    assert 0.4 <= untrained["zeroshot_cls/chexpert/auc"] <= 0.6, untrained
    assert trained["zeroshot_cls/chexpert/auc"] >= BUDGET_MIN_AUC, trained
    # Some finding is learnt almost perfectly: what separates learning from luck.
    assert max(v for k, v in trained.items() if k.startswith("zeroshot_cls/chexpert/") and
               k.endswith("/auc") and k.count("/") == 3) > 0.8
