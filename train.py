"""Pre-train a MedVLP model: python train.py [data=real|syn|mix] [model=convirt] [key=value ...]"""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from syncxr.config import run_dirname  # importing it registers the config resolvers
from syncxr.data.dataset_format import write_json_atomic
from syncxr.entry_point import run, validated
from syncxr.results.cost import estimate_job
from syncxr.results.provenance import quote_published_real
from syncxr.train.training_job import run_training


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@validated
def main(cfg: DictConfig) -> float:
    hc = HydraConfig.get()
    job = (dict(hc.runtime.choices), hc.runtime.output_dir, cfg.seed, cfg.dry_run)
    if quote_published_real(cfg.paper.reuse_published_real, *job):  # a published real row, quoted (§4.2)
        return float("nan")
    if cfg.dry_run:
        write_json_atomic(
            Path(hc.runtime.output_dir) / "cost.json",
            estimate_job(OmegaConf.to_container(cfg, resolve=True), cfg.cost, Path(cfg.paths.cache_dir).expanduser()),
        )
        return float("nan")
    group = Path(hc.sweep.dir).name if hc.mode == RunMode.MULTIRUN else "train"
    metrics = run_training(cfg, hc.runtime.output_dir, name=run_dirname(hc.job.override_dirname), group=group)
    return metrics.get("zeroshot_cls/chexpert/auc", float("nan"))


if __name__ == "__main__":
    run(main)
