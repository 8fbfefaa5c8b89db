"""The hydra/launcher presets compose, carry their settings, and take per-machine overrides."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigKeyError

import syncxr.config  # noqa: F401  (the run_dirname resolver)

REPO = Path(__file__).resolve().parents[2]


def launcher(overrides, conf_dir: Path = REPO / "conf"):
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    return cfg.hydra.launcher


def test_slurm_preset_is_a_requeueable_one_gpu_job():
    lc = launcher(["hydra/launcher=slurm"])
    assert lc._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (lc.gpus_per_node, lc.tasks_per_node, lc.nodes) == (1, 1, 1)
    assert lc.max_num_timeout > 0 and lc.additional_parameters.requeue is True
    assert lc.submitit_folder.endswith("/.submitit/%j")


def test_multigpu_preset_runs_one_task_per_gpu():
    lc = launcher(["hydra/launcher=slurm_multigpu"])
    assert lc.gpus_per_node == lc.tasks_per_node == 4
    lc = launcher(["hydra/launcher=slurm_multigpu", "hydra.launcher.gpus_per_node=8"])
    assert lc.tasks_per_node == 8 and lc.additional_parameters.requeue is True


def test_submitit_small_holds_a_slot_lock_per_job():
    lc = launcher(["hydra/launcher=submitit_small"])
    assert lc._target_.endswith("submitit_launcher.LocalLauncher")
    assert any("flock" in line for line in lc.setup) and lc.timeout_min >= 60


def test_local_slurm_file_overrides_the_presets_and_the_command_line_wins(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(REPO / "conf", conf, ignore=shutil.ignore_patterns("local"))
    (conf / "local").mkdir()
    (conf / "local" / "slurm.yaml").write_text(
        "partition: gpu\naccount: proj\nsetup: [source /opt/syncxr/.venv/bin/activate]\ncpus_per_task: 16\n"
    )
    lc = launcher(["hydra/launcher=slurm"], conf)
    assert (lc.partition, lc.account, lc.cpus_per_task) == ("gpu", "proj", 16)
    assert list(lc.setup) == ["source /opt/syncxr/.venv/bin/activate"]
    multi = launcher(["hydra/launcher=slurm_multigpu"], conf)
    assert (multi.partition, multi.account, multi.tasks_per_node) == ("gpu", "proj", 4)
    assert launcher(["hydra/launcher=slurm", "hydra.launcher.partition=debug"], conf).partition == "debug"
    # A misspelt key in the local file fails at once, naming it.
    (conf / "local" / "slurm.yaml").write_text("partiton: gpu\n")
    with pytest.raises((ConfigCompositionException, ConfigKeyError), match="partiton"):
        launcher(["hydra/launcher=slurm"], conf)
