"""One training job: build everything from the config, train, run the evaluation suite the `eval`
choice names (the same task code and benchmark configs as evaluate.py), write metrics.json."""

from __future__ import annotations

import functools
import logging
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from omegaconf import DictConfig, OmegaConf
from safetensors.torch import save_file
from torch.utils.data import DataLoader

from ..data.dataset_format import write_json_atomic
from ..data.durable import atomic_path, write_text_atomic
from ..data.paired_dataset import EpochShuffleSampler, ImageTextCollator, PairedImageTextDataset, augment_on_device
from ..data.transforms import eval_transform, train_transform
from ..dataset_dirs import build_training_table
from ..eval.checkpoint import weights_fingerprint
from ..eval.context import Context
from ..eval.embeddings import EmbeddingCache
from ..eval.evaluation_job import eval_settings, run_suite
from ..launch.accelerator import build_accelerator
from ..launch.data_parallel import parameter_digest, plain_batchnorm, sync_batchnorm
from ..models.build import build_model
from ..results.attention_maps import phantom_attention_examples, save_attention_grid
from ..results.plots import plot_loss
from .loop import LoopSettings, TrainingParts, steps_for, train
from .optim import build_optimizer, build_scheduler
from .run_dir import check_same_run, claimed_run_dir, is_requeue_of_start_over, note_start_over, set_aside_previous_run
from .validation import validation_metrics

log = logging.getLogger(__name__)


def run_training(cfg: DictConfig, out_dir: str | Path, name: str = "default", group: str = "train") -> dict:
    """Trains and evaluates the run described by `cfg` in `out_dir`; returns its metrics.
    `name` and `group` label the run in an experiment tracker (the overrides and the sweep).
    Another live job writing `out_dir` makes it fail at once (RunDirInUse)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    set_seed(cfg.seed)
    logger = cfg.get("logger")
    accelerator = build_accelerator(
        cfg.trainer.precision,
        cfg.trainer.cpu,
        key="trainer.precision",
        log_with="wandb" if logger is not None and logger.name == "wandb" else None,
    )
    with claimed_run_dir(out_dir, accelerator):
        resume = _prepare_run_dir(cfg, out_dir, accelerator)
        if accelerator.log_with:
            from ..results.wandb_logger import init_kwargs, tracker_config

            accelerator.init_trackers(
                cfg.logger.project,
                config=tracker_config(OmegaConf.to_container(cfg, resolve=True), out_dir),
                init_kwargs=init_kwargs(cfg.logger, out_dir, name, group, "train"),
            )
        try:
            return _train_and_evaluate(cfg, out_dir, accelerator, t0, resume)
        finally:
            accelerator.end_training()  # finishes the W&B run, also when training failed


def _prepare_run_dir(cfg: DictConfig, out_dir: Path, accelerator: Accelerator) -> bool:
    """Resuming: the checkpoints there must be this config's. Starting over: the earlier run's files
    are moved aside first (its checkpoints would otherwise outrank this run's, see set_aside_previous_run).
    Returns whether the run resumes: a SLURM requeue of the job that started over resumes its progress."""
    resume = cfg.trainer.resume or is_requeue_of_start_over(out_dir)
    if resume:
        check_same_run(out_dir, cfg)
    elif accelerator.is_main_process:
        previous = set_aside_previous_run(out_dir)
        note_start_over(out_dir)
        if previous is not None:
            log.warning("trainer.resume=false: the earlier run in %s was moved to %s", out_dir, previous)
    accelerator.wait_for_everyone()  # no process reads the dir while it is being cleared
    return resume


def _train_and_evaluate(cfg: DictConfig, out_dir: Path, accelerator: Accelerator, t0: float, resume: bool) -> dict:
    cache_dir = Path(cfg.paths.cache_dir).expanduser().resolve()
    if accelerator.is_main_process:
        write_text_atomic(out_dir / "resolved_config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
        (out_dir / EVALUATION_ENDED).unlink(missing_ok=True)  # a resumed run's earlier one
    accelerator.wait_for_everyone()  # no process may see the earlier marker before it is gone

    # Data (and a phantom text tower) are built on the main process first; the others then find
    # them in the cache.
    with accelerator.main_process_first():
        table = build_training_table(cfg.data, cache_dir, cfg.seed, curation_cfg=cfg.get("curation"))
        # The held-out rows (split "val") when the run validates (trainer.val_every).
        val_table = (
            build_training_table(cfg.data, cache_dir, cfg.seed, split="val", curation_cfg=cfg.get("curation"))
            if cfg.trainer.val_every
            else None
        )
        set_seed(cfg.seed)  # the same initial weights whatever data had to be built first
        model = build_model(cfg.model, cfg.image_encoder, cfg.text_encoder)
    tokenizer, max_length = model.text_encoder.tokenizer, model.text_encoder.max_length
    dataset, sampler, loader = _training_data(cfg, table, tokenizer, max_length, accelerator)
    parts = _training_parts(cfg, model, dataset, sampler, loader, accelerator)
    if val_table is not None:
        parts.val_loader = accelerator.prepare(_validation_loader(cfg, val_table, tokenizer, max_length))
    history = train(
        parts, out_dir, _loop_settings(cfg.trainer, resume), run_config=OmegaConf.to_container(cfg, resolve=True)
    )
    t_train = time.perf_counter()
    net = plain_batchnorm(accelerator.unwrap_model(parts.model))
    _check_replicas_agree(net, accelerator)
    if not accelerator.is_main_process:
        # The main process evaluates alone. The others wait for it on the file system: leaving at
        # once gets the whole step killed by srun after KillWait (often 30 s) while the main one is
        # still evaluating, and a collective barrier could outlast the process group's timeout
        # (10 min under NCCL).
        _wait_for(out_dir / EVALUATION_ENDED, accelerator.process_index)
        return {}
    with _marks_end(out_dir / EVALUATION_ENDED):
        # The trained weights beside resolved_config.yaml: all evaluate.py needs to rebuild the model.
        with atomic_path(out_dir / "model.safetensors") as tmp:
            save_file({k: v.contiguous() for k, v in net.state_dict().items()}, tmp)
        metrics = _evaluate(cfg, net, tokenizer, max_length, accelerator, cache_dir, out_dir)
        metrics.update(_training_metrics(history, len(table), dataset.skipped))
        metrics.update(validation_metrics(out_dir))
        write_json_atomic(out_dir / "metrics.json", metrics)
        write_json_atomic(out_dir / "timing.json", {"train_s": t_train - t0, "eval_s": time.perf_counter() - t_train})
        if history:
            plot_loss(history, out_dir / "loss.png")
        if net.has_local_maps:  # GLoRIA: where does each finding word look?
            images, captions, masks, findings = phantom_attention_examples(
                eval_transform(cfg.loader.image_size, normalize=cfg.loader.normalize)
            )
            save_attention_grid(
                net, tokenizer, images, captions, masks, findings, out_dir / "attention_maps.png", max_length=max_length
            )
        accelerator.log(metrics)
        return metrics


def _training_data(cfg: DictConfig, table, tokenizer, max_length: int, accelerator: Accelerator):
    """(dataset, sampler, loader) of the training table."""
    lc = cfg.loader
    dataset = PairedImageTextDataset(
        table,
        train_transform(lc.image_size, lc.crop_scale, lc.jitter, str(lc.normalize)),
        lc.text_mode,
        seed=cfg.seed,
        on_error=cfg.data.on_error,
    )
    sampler = EpochShuffleSampler(len(dataset), seed=cfg.seed)
    # The loader's own generator: creating an iterator must not draw from the global RNG, or a run
    # resumed mid-epoch (one extra iterator) would see different dropout masks from then on.
    # Under W processes each takes every W-th batch of the same order: together they see the
    # batches of one process at batch W*b.
    loader = DataLoader(
        dataset,
        batch_size=lc.batch_size,
        sampler=sampler,
        drop_last=True,
        num_workers=lc.num_workers,
        generator=torch.Generator().manual_seed(cfg.seed),
        collate_fn=ImageTextCollator(tokenizer, max_length),
        pin_memory=accelerator.device.type == "cuda",
    )
    if len(loader) == 0:
        raise ValueError(f"loader.batch_size={lc.batch_size} is larger than the {len(dataset)} training rows")
    return dataset, sampler, loader


def _validation_loader(cfg: DictConfig, table, tokenizer, max_length: int) -> DataLoader:
    """The held-out rows in a fixed order, each with the same whole-image view and report sentence
    at every validation (no crop or jitter; the dataset's epoch stays 0), so that validations compare."""
    lc = cfg.loader
    if len(table) == 0:
        raise ValueError(
            "trainer.val_every >= 1 but the training data has no held-out rows (split 'val'): "
            "generate with generation.val_fraction > 0, or set trainer.val_every=0"
        )
    dataset = PairedImageTextDataset(
        table, train_transform(lc.image_size, 1.0, 0.0), lc.text_mode, seed=cfg.seed, on_error=cfg.data.on_error
    )
    return DataLoader(
        dataset,
        batch_size=lc.batch_size,
        shuffle=False,
        drop_last=False,
        num_workers=lc.num_workers,
        generator=torch.Generator().manual_seed(cfg.seed),  # never the global RNG (exact resume)
        collate_fn=ImageTextCollator(tokenizer, max_length),
    )


def _training_parts(cfg: DictConfig, model, dataset, sampler, loader, accelerator: Accelerator) -> TrainingParts:
    """The optimiser and scheduler of `model`, everything `prepare`d by `accelerator`."""
    lc = cfg.loader
    total = cfg.trainer.max_epochs * steps_for(len(dataset), lc.batch_size * accelerator.num_processes, True)
    if cfg.trainer.max_steps is not None:
        total = min(total, cfg.trainer.max_steps)
    if cfg.trainer.sync_batchnorm:  # batch statistics of all processes' images (GPUs; no-op in one process)
        model = sync_batchnorm(model, accelerator.device)
    optimizer = build_optimizer(cfg.optimizer, [p for p in model.parameters() if p.requires_grad])
    scheduler = build_scheduler(cfg.get("scheduler"), optimizer, total)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    # The sampler is set here too: a loader resumed mid-epoch (accelerate's skip_first_batches) does
    # not pass the epoch on to it, and would replay epoch 0's order.
    return TrainingParts(
        model,
        optimizer,
        scheduler,
        loader,
        [sampler, dataset],
        accelerator,
        on_device=functools.partial(augment_on_device, normalize=str(lc.normalize)),
    )


def _loop_settings(t: DictConfig, resume: bool) -> LoopSettings:
    return LoopSettings(
        max_epochs=t.max_epochs,
        max_steps=t.max_steps,
        grad_clip=t.grad_clip,
        checkpoint_every=t.checkpoint_every,
        keep_checkpoints=t.keep_checkpoints,
        log_every=t.log_every,
        resume=resume,
        val_every=t.val_every,
        monitor=t.monitor,
        early_stopping_patience=t.early_stopping_patience,
        early_stopping_min_delta=t.early_stopping_min_delta,
        restore_best=t.restore_best,
    )


def _training_metrics(history: list[dict], train_rows: int, missing_rows: int) -> dict:
    """The last steps' loss, the steps run, the training rows and the rows skipped (`missing_rows`:
    images missing when the table was read; then those a batch could not load)."""
    metrics = {}
    if history:
        metrics["train/loss"] = float(np.mean([h["loss"] for h in history[-5:]]))
        metrics["train/steps"] = history[-1]["step"]
    metrics["data/train_rows"] = train_rows
    metrics["data/skipped_rows"] = missing_rows + (history[-1].get("skipped_rows", 0) if history else 0)
    return metrics


# Written by the main process once it is done (or failed): the other processes may then exit.
EVALUATION_ENDED = ".evaluation_ended"
WAIT_LIMIT_S = 48 * 3600  # a main process killed without a trace: give up eventually, loudly


@contextmanager
def _marks_end(marker: Path):
    """Touches `marker` when the block ends, also when it fails."""
    try:
        yield
    finally:
        marker.touch()


def _wait_for(marker: Path, rank: int, poll_s: float = 2.0) -> None:
    start = time.monotonic()
    while not marker.exists():
        if time.monotonic() - start > WAIT_LIMIT_S:
            raise TimeoutError(
                f"process {rank}: the main process did not finish evaluating within "
                f"{WAIT_LIMIT_S / 3600:.0f} h ({marker} never appeared)"
            )
        time.sleep(poll_s)


def _check_replicas_agree(model, accelerator: Accelerator) -> None:
    """Every process must hold the same weights after training (DDP keeps the replicas in step);
    each logs its digest, and a disagreement, which means gradients were not synchronised, fails
    the job on every process."""
    if accelerator.num_processes == 1:
        return
    digest = parameter_digest(model)
    log.info(
        "process %d of %d: parameter digest %s",
        accelerator.process_index,
        accelerator.num_processes,
        bytes(digest.tolist()).hex(),
    )
    digests = accelerator.gather(digest.to(accelerator.device)).view(accelerator.num_processes, -1).cpu()
    if not bool((digests == digests[0]).all()):
        differ = [i for i in range(len(digests)) if not torch.equal(digests[i], digests[0])]
        raise RuntimeError(
            f"after training, processes {differ} hold other weights than process 0: "
            "the replicas drifted apart (gradients not synchronised)"
        )


def _evaluate(
    cfg: DictConfig, model, tokenizer, max_length: int, accelerator: Accelerator, cache_dir: Path, out_dir: Path
) -> dict:
    """The suite of the run's `eval` choice (its `task` entries) on the model just trained."""
    ev = cfg.evaluation
    log.info(
        "evaluation suite (%s) on process %d of %d",
        ", ".join(cfg.task),
        accelerator.process_index,
        accelerator.num_processes,
    )
    # Keyed by the saved weights, where evaluate.py on this run looks too: it re-encodes nothing.
    cache = EmbeddingCache(out_dir / "eval_cache" if ev.embedding_cache else None, weights_fingerprint(out_dir))
    image_size = int(ev.image_size or cfg.loader.image_size)
    ctx = Context(
        eval_settings(ev, cfg.seed, str(cfg.loader.normalize)),
        cfg.benchmark,
        model,
        tokenizer,
        max_length,
        accelerator,
        image_size,
        cache,
        cache_dir,
    )
    return run_suite(ctx, cfg.task, out_dir, {"checkpoint": str(out_dir)})
