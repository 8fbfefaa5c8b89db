"""Analyse a real report corpus (curation, entity long tail): python analyze.py [dataset@corpus=...] [ner=...]"""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

import syncxr.config  # noqa: F401  (registers the config resolvers)
from syncxr.entry_point import run, validated


@hydra.main(version_base="1.3", config_path="conf", config_name="analyze")
@validated
def main(cfg: DictConfig) -> None:
    # Imported once the config has passed its checks (a refused one loads no torch), as in train.py.
    from syncxr.analysis.analysis_job import run_analysis  # noqa: PLC0415

    out = Path(HydraConfig.get().runtime.output_dir)
    run_analysis(cfg, out)
    print(f"analysis: {out}")


if __name__ == "__main__":
    run(main)
