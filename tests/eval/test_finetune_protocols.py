"""Fine-tuned classification and segmentation as the SynCXR paper's Appendix A.2 sets them (issue 21,
items 6-7): the optimiser paper mode builds, early stopping on the validation metric (stop, and the
best epoch's weights restored), a frozen or fine-tuned segmentation encoder, per-dataset batch sizes,
and the KAD/MAVL augmentation; the phantom defaults keep the old behaviour."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate import Accelerator

from syncxr.data.benchmark_split import Boxes, Split
from syncxr.data.finetune_augment import RandAugmentCrop
from syncxr.data.transforms import eval_transform
from syncxr.eval import finetune as finetune_module
from syncxr.eval.early_stopping import fit_with_early_stopping
from syncxr.eval.evaluation_job import run_evaluation
from syncxr.eval.finetune import FinetuneSettings, finetune_scores
from syncxr.eval.segmentation import train_segmenter
from tests.helpers import compose_eval, compose_train

SIZE = 32


class MemorySplit(Split):
    """A split whose images are in memory: bright square = positive, its box the mask."""

    def load(self, i: int):
        return self.images[i]


def planted_split(n: int, seed: int, name: str = "mem") -> MemorySplit:
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 2).astype(np.int64)[:, None]
    images, regions = [], []
    for y in labels[:, 0]:
        im = rng.integers(60, 100, size=(1, SIZE, SIZE), dtype=np.uint8)
        box = ()
        if y:
            r, c = rng.integers(4, SIZE - 14, size=2)
            im[:, r : r + 10, c : c + 10] = 220
            box = ((float(c), float(r), 10.0, 10.0),)
        images.append(torch.from_numpy(im))
        regions.append(Boxes(box))
    split = MemorySplit(
        source=Path(f"/{name}.csv"),
        ids=[f"{name}{i}" for i in range(n)],
        paths=[Path(f"/{name}{i}.png") for i in range(n)],
        rows=list(range(n)),
        classes=["finding"],
        labels=labels,
        regions=regions,
    )
    split.images = images
    return split


def tiny_encoder():
    from syncxr.models.image_encoder import ResNetEncoder  # noqa: PLC0415

    torch.manual_seed(0)
    return ResNetEncoder("resnet18", width=8)


def paper_task(name: str):
    return compose_train(["experiment=syncxr_paper"]).task[name]


class Recorder:
    """An optimizer factory that keeps what it built and counts its steps."""

    def __init__(self, factory):
        self.factory, self.built, self.steps = factory, None, 0

    def __call__(self, groups):
        opt = self.factory(groups)
        original = opt.step

        def step(*a, **kw):
            self.steps += 1
            return original(*a, **kw)

        opt.step = step
        self.built = opt
        return opt


def test_paper_mode_fine_tunes_with_the_published_adamw():
    st = FinetuneSettings.from_task(paper_task("finetune_cls"), seed=0, dataset="rsna")
    assert (st.epochs, st.batch_size, st.lr, st.head_lr) == (50, 64, 1e-4, 1e-4)
    assert (st.image_size, st.augment, st.augmentation) == (256, True, "randaugment")
    assert st.early_stopping and st.patience == 10
    rec = Recorder(st.optimizer)
    st = dataclasses.replace(st, optimizer=rec, epochs=1, batch_size=4, image_size=SIZE)
    finetune_scores(
        tiny_encoder(),
        planted_split(8, 0),
        np.arange(8),
        planted_split(6, 1),
        SIZE,
        Accelerator(cpu=True),
        st,
        planted_split(6, 2),
    )
    opt = rec.built
    assert isinstance(opt, torch.optim.AdamW)
    assert len(opt.param_groups) == 2  # encoder (all of it) and the linear head
    for group in opt.param_groups:
        assert (group["lr"], tuple(group["betas"]), group["weight_decay"]) == (1e-4, (0.9, 0.999), 1e-6)
    assert all(p.requires_grad for p in opt.param_groups[0]["params"])


def test_paper_mode_segments_with_the_published_adamw_and_a_fine_tuned_encoder():
    tcfg = paper_task("finetune_seg")
    st = FinetuneSettings.from_task(tcfg, seed=0, dataset="siim")
    assert (st.epochs, st.lr, st.freeze_encoder, st.early_stopping, st.patience) == (50, 2e-4, False, True, 10)
    rec = Recorder(st.optimizer)
    encoder = tiny_encoder()
    st = dataclasses.replace(st, optimizer=rec, epochs=1)
    train_segmenter(
        encoder,
        planted_split(8, 0),
        np.arange(8),
        eval_transform(SIZE),
        SIZE,
        Accelerator(cpu=True),
        st,
        planted_split(6, 2),
    )
    opt = rec.built
    assert isinstance(opt, torch.optim.AdamW)
    (group,) = opt.param_groups
    assert (group["lr"], tuple(group["betas"]), group["weight_decay"]) == (2e-4, (0.9, 0.999), 0.05)
    n_encoder = sum(1 for _ in encoder.parameters())
    assert len(group["params"]) > n_encoder  # the encoder's parameters and the decoder's


def test_per_dataset_batch_sizes_apply():
    tcfg = paper_task("finetune_seg")
    sizes = {ds: FinetuneSettings.from_task(tcfg, 0, ds).batch_size for ds in ("siim", "rsna", "covid_rural")}
    assert sizes == {"siim": 8, "rsna": 16, "covid_rural": 8}
    default = compose_train(["task=[finetune_seg]"]).task.finetune_seg
    assert FinetuneSettings.from_task(default, 0, "rsna").batch_size == default.batch_size
    # The batches the loader gives: one epoch of 16 images is 2 steps at SIIM's 8 and 1 at RSNA's 16.
    for ds, steps in (("siim", 2), ("rsna", 1)):
        st = FinetuneSettings.from_task(tcfg, 0, ds)
        rec = Recorder(st.optimizer)
        st = dataclasses.replace(st, optimizer=rec, epochs=1, early_stopping=False)
        train_segmenter(
            tiny_encoder(), planted_split(16, 0), np.arange(16), eval_transform(SIZE), SIZE, Accelerator(cpu=True), st
        )
        assert rec.steps == steps, ds


def _seg_settings(freeze: bool) -> FinetuneSettings:
    return FinetuneSettings(
        optimizer=lambda groups: torch.optim.AdamW(groups),
        steps=3,
        epochs=None,
        batch_size=4,
        lr=1e-2,
        seed=0,
        freeze_encoder=freeze,
    )


def test_a_frozen_encoder_stays_as_pretrained_and_an_unfrozen_one_trains():
    encoder = tiny_encoder()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    changed = {}
    for freeze in (True, False):
        net, record = train_segmenter(
            encoder,
            planted_split(8, 0),
            np.arange(8),
            eval_transform(SIZE),
            SIZE,
            Accelerator(cpu=True),
            _seg_settings(freeze),
        )
        assert record is None
        after = net.encoder.state_dict()
        changed[freeze] = [k for k in before if not torch.equal(before[k], after[k])]
        assert all(torch.equal(before[k], v) for k, v in encoder.state_dict().items())  # the copy trained
    assert changed[True] == []  # weights and batch-norm statistics alike
    assert any(k.endswith("conv1.weight") for k in changed[False]) and any("running_mean" in k for k in changed[False])


def test_early_stopping_stops_after_patience_and_restores_the_best_epoch():
    net = torch.nn.Linear(1, 1, bias=False)
    weights, scores = [], iter([0.5, 0.9, 0.7, 0.6, 0.95, 0.99])

    def train_epoch(epoch):
        with torch.no_grad():
            net.weight.fill_(float(epoch + 1))
        weights.append(float(epoch + 1))

    record = fit_with_early_stopping(net, train_epoch, lambda: next(scores), epochs=6, patience=2)
    assert (record.best_epoch, record.epochs_run, record.best_score) == (1, 4, 0.9)
    assert weights == [1.0, 2.0, 3.0, 4.0]  # epochs 5-6 (better, but after the patience ran out) never ran
    assert float(net.weight.detach()) == 2.0  # the best epoch's weights, not the last
    scores = iter([0.5, 0.9, 0.7, 0.6, 0.95, 0.99])
    record = fit_with_early_stopping(net, train_epoch, lambda: next(scores), epochs=6, patience=None)
    assert (record.best_epoch, record.epochs_run, float(net.weight.detach())) == (5, 6, 6.0)
    with pytest.raises(ValueError, match="patience"):
        fit_with_early_stopping(net, train_epoch, lambda: 0.5, epochs=3, patience=0)


def test_fine_tuning_stops_on_the_validation_auc_and_scores_the_best_epoch(monkeypatch):
    """The validation AUC peaks at the first epoch: two more epochs run (patience 2), then the test
    split is scored with the first epoch's weights, as a run of one epoch scores it."""
    train, test, val = planted_split(8, 0), planted_split(6, 1), planted_split(6, 2)
    base = FinetuneSettings(
        optimizer=lambda groups: torch.optim.AdamW(groups),
        steps=1,
        epochs=1,
        batch_size=4,
        lr=1e-2,
        seed=0,
        head_lr=1e-2,
        augment=True,
        augmentation="randaugment",
    )
    one_epoch, record = finetune_scores(tiny_encoder(), train, np.arange(8), test, SIZE, Accelerator(cpu=True), base)
    assert record is None
    seen = iter([0.8, 0.6, 0.7, 0.9])
    monkeypatch.setattr(finetune_module, "validation_auc", lambda *a: next(seen))
    st = dataclasses.replace(base, epochs=10, early_stopping=True, patience=2)
    scores, record = finetune_scores(tiny_encoder(), train, np.arange(8), test, SIZE, Accelerator(cpu=True), st, val)
    assert (record.best_epoch, record.epochs_run) == (0, 3)
    np.testing.assert_allclose(scores, one_epoch, rtol=1e-5, atol=1e-6)
    monkeypatch.undo()
    with pytest.raises(ValueError, match="validation split"):
        finetune_scores(tiny_encoder(), train, np.arange(8), test, SIZE, Accelerator(cpu=True), st, None)


def test_early_stopping_needs_epochs_and_the_validation_auc_needs_both_label_values():
    tcfg = compose_train(["task=[finetune_cls]", "task.finetune_cls.early_stopping=true"]).task.finetune_cls
    with pytest.raises(ValueError, match="epochs"):
        FinetuneSettings.from_task(tcfg, 0)
    val = planted_split(4, 2)
    val.labels = np.zeros_like(val.labels)
    net = finetune_module.Classifier(tiny_encoder(), 1)
    with pytest.raises(ValueError, match="mem.csv.*both label values"):
        finetune_module.validation_auc(net, val, SIZE, Accelerator(cpu=True), 4)


def test_the_phantom_defaults_keep_the_old_protocol():
    cfg = compose_train(["task=[finetune_cls,finetune_seg]"])
    cls = FinetuneSettings.from_task(cfg.task.finetune_cls, 0, "rsna")
    seg = FinetuneSettings.from_task(cfg.task.finetune_seg, 0, "rsna")
    assert (cls.early_stopping, cls.augmentation, cls.image_size, cls.batch_size) == (False, "crop_jitter", None, 32)
    assert (seg.early_stopping, seg.freeze_encoder, seg.batch_size) == (False, True, 16)


def test_the_kad_mavl_augmentation():
    aug = RandAugmentCrop(24)
    img = torch.from_numpy(np.random.default_rng(0).integers(0, 255, size=(1, 40, 48), dtype=np.uint8))
    a = aug(img, np.random.default_rng(1))
    assert a.shape == (1, 24, 24) and a.dtype == torch.float32
    assert torch.equal(a, aug(img, np.random.default_rng(1)))  # a function of the rng
    draws = [aug(img, np.random.default_rng(s)) for s in range(20)]
    assert len({tuple(d.flatten().tolist()) for d in draws}) >= 18  # crops, flips and ops vary
    # Each op at magnitude 7 of 10: a 7-pixel translation moves a bright column by 7 pixels.
    bar = torch.full((1, 32, 32), 50, dtype=torch.uint8)
    bar[:, :, 10] = 250
    moved = RandAugmentCrop(32).apply_op("TranslateX", bar, np.random.default_rng(0))
    assert int(moved[0, 16].argmax()) in (3, 17)
    with pytest.raises(ValueError, match="magnitude"):
        RandAugmentCrop(24, magnitude=11)
    with pytest.raises(TypeError, match="uint8"):
        aug(img.float(), np.random.default_rng(0))


# The paper's fine-tuning (recipe=paper's task settings) on small twins, one or two epochs.
PAPER_FINETUNE = [
    "task=[finetune_cls,finetune_seg]",
    "task.finetune_cls.datasets=[rsna]",
    "task.finetune_seg.datasets=[siim,rsna]",
    "task.finetune_cls.fractions=[1.0]",
    "task.finetune_seg.fractions=[1.0]",
    "task.finetune_cls.optimizer._target_=torch.optim.AdamW",
    "task.finetune_seg.optimizer._target_=torch.optim.AdamW",
    "task.finetune_cls.augmentation=randaugment",
    "task.finetune_cls.early_stopping=true",
    "task.finetune_seg.early_stopping=true",
    "task.finetune_cls.epochs=2",
    "task.finetune_seg.epochs=1",
    "task.finetune_cls.patience=5",
    "task.finetune_seg.freeze_encoder=false",
    "task.finetune_seg.batch_size_per_dataset={siim: 8, rsna: 16}",
    "embedding_cache=null",
]


@pytest.mark.slow  # end to end (the quick loop, pytest -m 'not slow', stays under two minutes)
def test_the_suite_records_the_protocol_that_ran(untrained_run, tmp_path):
    m = run_evaluation(compose_eval(untrained_run, PAPER_FINETUNE), tmp_path)
    assert m["finetune_seg/siim/encoder_frozen"] == m["finetune_seg/rsna/encoder_frozen"] == 0.0
    assert m["finetune_cls/rsna/epochs_run_100pct"] == 2.0 and m["finetune_cls/rsna/best_epoch_100pct"] in (1.0, 2.0)
    assert m["finetune_seg/siim/best_epoch_100pct"] == 1.0 and np.isfinite(m["finetune_seg/siim/dice_100pct"])
    info = json.loads((tmp_path / "evaluation.json").read_text())["details"]
    assert info["finetune_seg"]["siim"]["batch_size"] == 8 and info["finetune_seg"]["rsna"]["batch_size"] == 16
    assert info["finetune_seg"]["rsna"]["encoder_frozen"] is False
    # A benchmark without a validation split cannot stop early: said, naming the key.
    seg_only = [o for o in PAPER_FINETUNE[1:] if not o.startswith("task.finetune_cls")]
    no_valid = ["task=[finetune_seg]", *seg_only, "benchmark.siim.splits.valid=null"]
    with pytest.raises(ValueError, match=r"task.finetune_seg.early_stopping: benchmark.siim has no validation split"):
        run_evaluation(compose_eval(untrained_run, no_valid), tmp_path / "no_valid")


def test_every_fine_tuning_value_of_paper_mode_names_its_source():
    import re  # noqa: PLC0415

    from tests.helpers import REPO  # noqa: PLC0415

    lines = (REPO / "conf" / "recipe" / "paper.yaml").read_text().splitlines()
    start = lines.index("  finetune_cls:")
    block = []
    for line in lines[start + 1 :]:
        if re.match(r"^ {0,2}\S", line) and line.strip() != "finetune_seg:" and not line.lstrip().startswith("#"):
            break
        block.append(line)
    keys = [line for line in block if re.match(r"^ {4,6}[a-z_]+:", line) and not line.endswith(":")]  # values
    assert len(keys) >= 20, keys
    for line in keys:
        assert re.search(r"# (paper|official) ", line), f"no source: {line.strip()}"
