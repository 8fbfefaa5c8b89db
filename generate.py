"""Generate a SynCXR synthetic dataset: python generate.py [n_samples=N] [seed=S] [output_dir=DIR] ..."""

import json
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from syncxr.config import run_dirname
from syncxr.dataset_dirs import generate_dataset
from syncxr.generation.generation_job import generated_dir, generation_config
from syncxr.results.wandb_logger import TrackedRun


@hydra.main(version_base="1.3", config_path="conf", config_name="generate")
def main(cfg: DictConfig) -> None:
    gen = generation_config(cfg)
    cache_dir = Path(cfg.paths.cache_dir).expanduser().resolve()
    out = Path(cfg.output_dir) if cfg.output_dir else generated_dir(gen, cache_dir)
    hc = HydraConfig.get()
    with TrackedRun(cfg.get("logger"), hc.runtime.output_dir, run_dirname(hc.job.override_dirname), "generate",
                    "generate", {**gen, "output_dir": str(out)}) as tracker:
        path = generate_dataset(gen, out, cache_dir, progress=cfg.progress, until=cfg.until)
        info = path / "dataset.json"
        tracker.log(json.loads(info.read_text()) if info.is_file() else {}, sorted(path.glob("*.png")))
    print(f"dataset: {path}")


if __name__ == "__main__":
    main()
