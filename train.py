"""Pre-train a MedVLP model: python train.py [data=real|syn|mix] [model=convirt] [key=value ...]"""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from syncxr.config import run_dirname  # importing it registers the config resolvers
from syncxr.entry_point import run, validated


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@validated
def main(cfg: DictConfig) -> float:
    # Imported once the config has passed its checks: a refused config, and a launcher that only submits
    # jobs, load no torch.
    from syncxr.paper_prerequisites import require, training_prerequisites  # noqa: PLC0415
    from syncxr.results.cost import write_job_cost  # noqa: PLC0415
    from syncxr.results.provenance import quote_published_real  # noqa: PLC0415
    from syncxr.train.training_job import run_training  # noqa: PLC0415

    hc = HydraConfig.get()
    job = (dict(hc.runtime.choices), hc.runtime.output_dir, cfg.seed, cfg.dry_run)
    if quote_published_real(cfg.paper.reuse_published_real, *job):  # a published real row, quoted (§4.2)
        return float("nan")
    if cfg.dry_run:  # price the job (and list what paper mode lacks), run nothing
        return write_job_cost(cfg, hc.runtime.output_dir)
    require(training_prerequisites(cfg, Path(cfg.paths.cache_dir).expanduser()))  # paper mode: all given
    group = Path(hc.sweep.dir).name if hc.mode == RunMode.MULTIRUN else "train"
    metrics = run_training(cfg, hc.runtime.output_dir, name=run_dirname(hc.job.override_dirname), group=group)
    return metrics.get("zeroshot_cls/chexpert/auc", float("nan"))


if __name__ == "__main__":
    run(main)
