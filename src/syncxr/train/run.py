"""One training run: build everything from the config, train, evaluate, write metrics.json."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, set_seed
from omegaconf import DictConfig, OmegaConf
from safetensors.torch import save_file
from torch.utils.data import DataLoader

from .. import builders
from ..data.benchmarks import read_chexpert
from ..data.dataset_format import write_json_atomic
from ..data.durable import atomic_path, write_text_atomic
from ..data.paired_dataset import EpochShuffleSampler, ImageTextCollator, PairedImageTextDataset
from ..data.transforms import eval_transform, train_transform
from ..eval.metrics import prefix_metrics
from ..eval.zeroshot import zeroshot_classification
from ..launch.distributed import export_distributed_env
from ..models.text_encoder import load_tokenizer
from ..report.attention_maps import phantom_attention_examples, save_attention_grid
from ..report.plots import plot_loss
from .loop import LoopSettings, steps_for, train


def build_accelerator(trainer_cfg, logger_cfg=None) -> Accelerator:
    precision = str(trainer_cfg.precision)
    if precision not in ("no", "bf16", "fp16"):
        raise ValueError(f"trainer.precision must be no, bf16 or fp16, got {precision!r}")
    cpu = bool(trainer_cfg.cpu) or not torch.cuda.is_available()
    if precision == "fp16" and cpu:
        raise ValueError("trainer.precision=fp16 needs a GPU; use bf16 or no on the CPU")
    log_with = "wandb" if logger_cfg is not None and logger_cfg.name == "wandb" else None
    export_distributed_env()  # one task per GPU under submitit/SLURM: join them (no-op elsewhere)
    # Under DDP (several processes) parameters without a gradient, such as BERT's unused pooler,
    # must be allowed, or the second step fails.
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
    return Accelerator(mixed_precision=precision, cpu=cpu, log_with=log_with, kwargs_handlers=[ddp])


def evaluate_zeroshot(model, tokenizer, accelerator, eval_cfg, loader_cfg, text_cfg, cache_dir: Path) -> dict:
    metrics = {}
    transform = eval_transform(loader_cfg.image_size)
    for name, ds in eval_cfg.zeroshot_cls.items():
        root = builders.build_benchmark_dir(ds.benchmark, cache_dir, f"eval.zeroshot_cls.{name}.benchmark")
        classes = list(ds.classes)
        test_paths, test_labels = read_chexpert(root, ds.test_split, classes)
        val_paths = val_labels = None
        if ds.get("val_split"):
            val_paths, val_labels = read_chexpert(root, ds.val_split, classes)
        res = zeroshot_classification(
            model, tokenizer, transform, accelerator, classes, test_paths, test_labels.to_numpy(),
            val_paths, None if val_labels is None else val_labels.to_numpy(),
            positive=list(eval_cfg.prompts.positive), negative=list(eval_cfg.prompts.negative),
            max_length=text_cfg.max_length, batch_size=eval_cfg.batch_size)
        metrics.update(prefix_metrics("zeroshot_cls", name, res))
    return metrics


def run_training(cfg: DictConfig, out_dir: str | Path, name: str = "default", group: str = "train") -> dict:
    """Trains and evaluates the run described by `cfg` in `out_dir`; returns its metrics.
    `name` and `group` label the run in an experiment tracker (the overrides and the sweep)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    set_seed(cfg.seed)
    accelerator = build_accelerator(cfg.trainer, cfg.get("logger"))
    if accelerator.log_with:
        from ..report.wandb_logger import init_kwargs
        accelerator.init_trackers(cfg.logger.project, config=OmegaConf.to_container(cfg, resolve=True),
                                  init_kwargs=init_kwargs(cfg.logger, out_dir, name, group, "train"))
    try:
        return _train_and_evaluate(cfg, out_dir, accelerator, t0)
    finally:
        accelerator.end_training()  # finishes the W&B run, also when training failed


def _train_and_evaluate(cfg: DictConfig, out_dir: Path, accelerator: Accelerator, t0: float) -> dict:
    cache_dir = Path(cfg.paths.cache_dir).expanduser().resolve()
    if accelerator.is_main_process:
        write_text_atomic(out_dir / "resolved_config.yaml", OmegaConf.to_yaml(cfg, resolve=True))

    # Data are built on the main process first; the others then find them in the cache.
    with accelerator.main_process_first():
        table = builders.build_training_table(cfg.data, cache_dir, cfg.seed, curation_cfg=cfg.get("curation"))
        text_path = builders.resolve_text_encoder_path(cfg.text_encoder, cache_dir, cfg.seed)
    tokenizer = load_tokenizer(text_path)
    set_seed(cfg.seed)  # the same initial weights whatever data had to be built first
    model = builders.build_model(cfg.model, cfg.image_encoder, cfg.text_encoder, text_path)

    lc = cfg.loader
    dataset = PairedImageTextDataset(table, train_transform(lc.image_size, lc.crop_scale, lc.jitter),
                                     lc.text_mode, seed=cfg.seed, on_error=cfg.data.on_error)
    sampler = EpochShuffleSampler(len(dataset), seed=cfg.seed)
    # The loader's own generator: creating an iterator must not draw from the global RNG, or a run
    # resumed mid-epoch (one extra iterator) would see different dropout masks from then on.
    loader = DataLoader(dataset, batch_size=lc.batch_size, sampler=sampler, drop_last=True,
                        num_workers=lc.num_workers, generator=torch.Generator().manual_seed(cfg.seed),
                        collate_fn=ImageTextCollator(tokenizer, cfg.text_encoder.max_length))
    if len(loader) == 0:
        raise ValueError(f"loader.batch_size={lc.batch_size} is larger than the {len(dataset)} training rows")
    total = cfg.trainer.max_epochs * steps_for(len(dataset), lc.batch_size * accelerator.num_processes, True)
    if cfg.trainer.max_steps is not None:
        total = min(total, cfg.trainer.max_steps)
    optimizer = builders.build_optimizer(cfg.optimizer, [p for p in model.parameters() if p.requires_grad])
    scheduler = builders.build_scheduler(cfg.get("scheduler"), optimizer, total)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)

    t = cfg.trainer
    history = train(model, optimizer, scheduler, loader, [dataset], accelerator, out_dir,
                    LoopSettings(max_epochs=t.max_epochs, max_steps=t.max_steps, grad_clip=t.grad_clip,
                                 checkpoint_every=t.checkpoint_every, keep_checkpoints=t.keep_checkpoints,
                                 log_every=t.log_every, resume=t.resume))
    t_train = time.perf_counter()
    metrics = {}
    if accelerator.is_main_process:
        net = accelerator.unwrap_model(model)
        # The trained weights beside resolved_config.yaml: all evaluate.py needs to rebuild the model.
        with atomic_path(out_dir / "model.safetensors") as tmp:
            save_file({k: v.contiguous() for k, v in net.state_dict().items()}, tmp)
        metrics.update(evaluate_zeroshot(net, tokenizer, accelerator, cfg.eval, lc, cfg.text_encoder, cache_dir))
        if history:
            metrics["train/loss"] = float(np.mean([h["loss"] for h in history[-5:]]))
            metrics["train/steps"] = history[-1]["step"]
        metrics["data/train_rows"] = len(table)
        metrics["data/skipped_rows"] = dataset.skipped + (history[-1].get("skipped_rows", 0) if history else 0)
        write_json_atomic(out_dir / "metrics.json", metrics)
        write_json_atomic(out_dir / "timing.json", {"train_s": t_train - t0, "eval_s": time.perf_counter() - t_train})
        if history:
            plot_loss(history, out_dir / "loss.png")
        if hasattr(net, "word_attention"):  # GLoRIA: where does each finding word look?
            images, captions, masks, findings = phantom_attention_examples(eval_transform(lc.image_size))
            save_attention_grid(net, tokenizer, images, captions, masks, findings, out_dir / "attention_maps.png",
                                max_length=cfg.text_encoder.max_length)
        accelerator.log(metrics)
    accelerator.wait_for_everyone()
    return metrics
