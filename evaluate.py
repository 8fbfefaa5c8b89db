"""Evaluate a trained checkpoint downstream:
python evaluate.py checkpoint=<train run dir> [task=[zeroshot_cls,zeroshot_grounding,...]] [protocol=val|paper]"""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from syncxr.config import run_dirname
from syncxr.entry_point import run, validated


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
@validated
def main(cfg: DictConfig) -> float:
    # Imported once the config has passed its checks (a refused one loads no torch), as in train.py.
    from syncxr.eval.evaluation_job import run_evaluation  # noqa: PLC0415
    from syncxr.results.wandb_logger import TrackedRun  # noqa: PLC0415

    hc = HydraConfig.get()
    out = Path(hc.runtime.output_dir)
    group = Path(hc.sweep.dir).name if hc.mode == RunMode.MULTIRUN else "evaluate"
    with TrackedRun(
        cfg.get("logger"),
        out,
        run_dirname(hc.job.override_dirname),
        group,
        "evaluate",
        OmegaConf.to_container(cfg, resolve=True),
    ) as tracker:
        metrics = run_evaluation(cfg, out)
        tracker.log(metrics, sorted(out.glob("*.png")))
    return metrics.get("zeroshot_cls/chexpert/auc", float("nan"))


if __name__ == "__main__":
    run(main)
