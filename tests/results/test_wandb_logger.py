import pytest

from syncxr.results.wandb_logger import NOT_CONFIGURED, check_configured, run_id
from syncxr.train.training_job import run_training
from tests.helpers import TINY, compose_train


def test_run_id_is_stable_per_output_dir(tmp_path):
    assert run_id(tmp_path / "a") == run_id(tmp_path / "a") != run_id(tmp_path / "b")


def test_unconfigured_online_logging_fails_with_instructions(monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    import wandb

    monkeypatch.setattr(type(wandb.api), "api_key", property(lambda self: None))
    with pytest.raises(RuntimeError, match="wandb login"):
        check_configured(None)
    assert "wandb sync" in NOT_CONFIGURED
    assert check_configured("offline") == "offline"
    with pytest.raises(ValueError, match="logger.mode"):
        check_configured("sometimes")


@pytest.mark.slow
def test_offline_run_logs_and_a_rerun_continues_the_same_run(cache_dir, tmp_path):
    cfg = compose_train(TINY + ["logger=wandb", "logger.mode=offline", "trainer.max_steps=2"])
    run_training(cfg, tmp_path / "run", name="data=syn", group="sweep-x")
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and runs[0].name.endswith(run_id(tmp_path / "run"))
    run_training(cfg, tmp_path / "run", name="data=syn", group="sweep-x")  # a requeued job
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    # offline-run-<time>-<id>, with "-1" added by wandb when the rerun starts in the same second
    assert {r.name.split("-")[3] for r in runs} == {run_id(tmp_path / "run")}


def test_tracked_run_logs_flat_numbers_and_images_and_always_finishes(tmp_path, monkeypatch):
    import wandb

    from syncxr.results.wandb_logger import TrackedRun

    calls = []

    class FakeRun:
        def __init__(self, **kw):
            self.kw, self.logged, self.exit_code = kw, {}, None
            calls.append(self)

        def log(self, d):
            self.logged.update(d)

        def finish(self, exit_code=0):
            self.exit_code = exit_code

    monkeypatch.setattr(wandb, "init", lambda **kw: FakeRun(**kw))
    (tmp_path / "grounding.png").write_bytes(b"")
    png = tmp_path / "plot.png"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.figure().savefig(png)
    cfg = {"name": "wandb", "project": "p", "mode": "offline"}
    with TrackedRun(cfg, tmp_path / "job", "task=x", "sweep-1", "evaluate", {"seed": 3}) as t:
        t.log(
            {"counts": {"rows": 5, "failed": {"no_answer": 1}}, "name": "text is not logged"},
            [png, tmp_path / "missing.png"],
        )
    run = calls[0]
    assert run.kw["job_type"] == "evaluate" and run.kw["group"] == "sweep-1" and run.kw["config"] == {"seed": 3}
    assert run.kw["id"] == run_id(tmp_path / "job") and run.exit_code == 0
    assert run.logged["counts/rows"] == 5 and run.logged["counts/failed/no_answer"] == 1
    assert "name" not in run.logged and set(k for k in run.logged if k.startswith("images/")) == {"images/plot"}
    with pytest.raises(RuntimeError):
        with TrackedRun(cfg, tmp_path / "job2", "n", "g", "generate", {}):
            raise RuntimeError("generation died")
    assert calls[1].exit_code == 1  # finished, marked failed
    with TrackedRun({"name": "none"}, tmp_path, "n", "g", "evaluate", {}) as t:
        t.log({"a": 1})
    assert len(calls) == 2


def test_a_training_run_gives_w_and_b_its_swept_values_at_the_top(tmp_path, monkeypatch):
    """train/training_job.py hands W&B the config of tracker_config: the job's overrides at the top."""
    from accelerate import Accelerator

    class Stop(Exception):
        pass

    seen = {}

    def init_trackers(self, project, config=None, init_kwargs=None):
        seen.update(project=project, config=config, init_kwargs=init_kwargs)
        raise Stop  # what follows is training, tested elsewhere

    monkeypatch.setattr(Accelerator, "init_trackers", init_trackers)
    out = tmp_path / "data=syn,sampling=longtail"
    (out / ".hydra").mkdir(parents=True)
    (out / ".hydra" / "overrides.yaml").write_text("- data=syn\n- sampling=longtail\n- seed=3\n")
    cfg = compose_train(TINY + ["logger=wandb", "logger.mode=offline", "seed=3", "sampling=longtail"])
    with pytest.raises(Stop):
        run_training(cfg, out, name="data=syn,sampling=longtail", group="sweep-x")
    config = seen["config"]
    assert (config["data"], config["model"], config["seed"], config["sampling"]) == ("syn", "convirt", 3, "longtail")
    assert config["cfg"]["sampling"]["name"] == "longtail" and config["cfg"]["seed"] == 3
    assert seen["init_kwargs"]["wandb"]["group"] == "sweep-x"
