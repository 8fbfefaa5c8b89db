import pytest

from syncxr.report.wandb_logger import NOT_CONFIGURED, check_configured, run_id
from syncxr.train.run import run_training
from tests.train.test_train_e2e import TINY, compose_train


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
    assert {r.name.rsplit("-", 1)[1] for r in runs} == {run_id(tmp_path / "run")}
