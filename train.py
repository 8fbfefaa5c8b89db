"""Pre-train a MedVLP model: python train.py [data=real|syn|mix] [model=convirt] [key=value ...]"""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

import syncxr.config  # noqa: F401  (registers the config resolvers)
from syncxr.train.run import run_training


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    metrics = run_training(cfg, HydraConfig.get().runtime.output_dir)
    return metrics.get("zeroshot_cls/chexpert/auc", float("nan"))


if __name__ == "__main__":
    main()
