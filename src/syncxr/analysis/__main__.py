"""python -m syncxr.analysis [dataset@corpus=...] [ner=...] [curation=...]: see conf/analyze.yaml."""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

import syncxr.config  # noqa: F401  (registers the config resolvers)

from .run import run_analysis

CONF = str(Path(__file__).resolve().parents[3] / "conf")  # the repo's conf/ (editable install)


@hydra.main(version_base="1.3", config_path=CONF, config_name="analyze")
def main(cfg: DictConfig) -> None:
    out = Path(HydraConfig.get().runtime.output_dir)
    run_analysis(cfg, out)
    print(f"analysis: {out}")


if __name__ == "__main__":
    main()
