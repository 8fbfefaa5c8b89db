"""Generate a SynCXR synthetic dataset: python generate.py [n_samples=N] [seed=S] [output_dir=DIR] ..."""

from pathlib import Path

import hydra
from omegaconf import DictConfig

import syncxr.config  # noqa: F401  (registers the config resolvers)
from syncxr.generation.builders import generation_config, run_generation
from syncxr.generation.pipeline import generation_hash


@hydra.main(version_base="1.3", config_path="conf", config_name="generate")
def main(cfg: DictConfig) -> None:
    gen = generation_config(cfg)
    cache_dir = Path(cfg.paths.cache_dir).expanduser().resolve()
    out = Path(cfg.output_dir) if cfg.output_dir else cache_dir / "generated" / f"syncxr-{generation_hash(gen)}"
    path = run_generation(gen, out, cache_dir, progress=cfg.progress, until=cfg.until)
    print(f"dataset: {path}")


if __name__ == "__main__":
    main()
