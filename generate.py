"""Generate a SynCXR dataset: python generate.py [train.py's overrides] [output_dir=DIR] [-m workers=K (SLURM too)]"""

import json
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from syncxr.config import run_dirname
from syncxr.entry_point import run, validated


@hydra.main(version_base="1.3", config_path="conf", config_name="generate")
@validated
def main(cfg: DictConfig) -> None:
    from syncxr.dataset_dirs import generate_dataset  # noqa: PLC0415 - after the checks: a refused config loads no torch
    from syncxr.generation.addresses import addressed_config  # noqa: PLC0415
    from syncxr.generation.generation_job import generated_dir, generation_config, resume_hint, worker_of  # noqa: PLC0415
    from syncxr.results.cost import generation_preflight  # noqa: PLC0415
    from syncxr.results.wandb_logger import TrackedRun  # noqa: PLC0415

    gen, hc = generation_config(cfg.generation), HydraConfig.get()
    cache_dir = Path(cfg.paths.cache_dir).expanduser().resolve()
    if generation_preflight(cfg, gen, cache_dir, hc.runtime.output_dir):  # dry run: priced, nothing made
        return
    out = Path(cfg.output_dir) if cfg.output_dir else generated_dir(gen, cache_dir)
    worker, workers = worker_of(cfg.worker, cfg.workers)
    name, tracked = run_dirname(hc.job.override_dirname), {**addressed_config(gen), "output_dir": str(out)}
    log_args = (cfg.get("logger"), hc.runtime.output_dir, name, "generate", "generate", tracked)
    with TrackedRun(*log_args) as tracker, resume_hint(["python", "generate.py", *hc.overrides.task]):
        path = generate_dataset(gen, out, cache_dir, cfg.progress, cfg.until, worker, workers)
        info = out / "dataset.json"
        tracker.log(json.loads(info.read_text()) if info.is_file() else {}, sorted(out.glob("*.png")))
    print(f"dataset: {path}" if path else f"worker {worker} of {workers} done; the last one writes {out}")


if __name__ == "__main__":
    run(main)
