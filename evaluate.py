"""Evaluate a trained checkpoint downstream:
python evaluate.py checkpoint=<train run dir> [task=[zeroshot_cls,zeroshot_grounding,...]] [protocol=val|paper]"""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

import syncxr.config  # noqa: F401  (registers the config resolvers)
from syncxr.eval.run import run_evaluation


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> float:
    metrics = run_evaluation(cfg, HydraConfig.get().runtime.output_dir)
    return metrics.get("zeroshot_cls/chexpert/auc", float("nan"))


if __name__ == "__main__":
    main()
