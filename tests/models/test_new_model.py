"""A new model is two files: its code and its model YAML (`model:` section with the `_target_` that
builds it, and the model's own training defaults). Here both live outside the repository (a module in
a tmp dir, a config dir on Hydra's search path), so the test also shows that no file of syncxr has to
change: not build.py, not train.yaml, no pretraining or scheduler file. Its published settings, for
recipe=paper, are one more file (conf/pretraining/<name>.yaml)."""

from __future__ import annotations

import json

import pytest
from hydra.errors import MissingConfigException

from syncxr.train.training_job import run_training
from tests.helpers import TINY, compose_train

MODULE = '''
import torch
import torch.nn.functional as F
from torch import nn


class TinyDual(nn.Module):
    """One linear head per tower and a symmetric InfoNCE loss: the least a model needs (encode_image,
    encode_text, forward -> {"loss"}, and the declared members of models/protocols.py) to train and run
    the zero-shot suite."""

    has_local_maps = False  # no word-to-region maps of its own (models/protocols.py)

    def __init__(self, image_encoder, text_encoder, *, dim, tau):
        super().__init__()
        self.image_encoder, self.text_encoder = image_encoder, text_encoder
        self.image_head = nn.Linear(image_encoder.dim, dim)
        self.text_head = nn.Linear(text_encoder.dim, dim)
        self.tau = tau

    @property
    def local_projection(self):
        return self.image_head  # per location of the last-stage map, whose channels are the pooled feature's

    def encode_image(self, images):
        return F.normalize(self.image_head(self.image_encoder(images)), dim=-1)

    def encode_text(self, input_ids, attention_mask):
        return F.normalize(self.text_head(self.text_encoder(input_ids, attention_mask)), dim=-1)

    def forward(self, images, input_ids, attention_mask):
        logits = self.encode_image(images) @ self.encode_text(input_ids, attention_mask).t() / self.tau
        target = torch.arange(len(logits), device=logits.device)
        return {"loss": (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2}
'''

MODEL_YAML = """\
# @package _global_
model:
  _target_: tiny_dual_model.TinyDual
  name: tiny_dual
  dim: 8
  tau: 0.2
# Its own training defaults: they win over the base files (conf/optimizer, conf/trainer).
optimizer:
  lr: 2e-3
trainer:
  grad_clip: 1.0
"""


# Its published settings: the values and the scheduler recipe=paper trains it with.
PUBLISHED_YAML = """\
# @package _global_
defaults:
  - /scheduler@scheduler: constant
  - _self_
model:
  dim: 16
optimizer:
  lr: 1e-4
"""


def _conf_dir(tmp_path, published: bool = False):
    conf = tmp_path / "conf"
    (conf / "model").mkdir(parents=True)
    (conf / "model" / "tiny_dual.yaml").write_text(MODEL_YAML)
    if published:
        (conf / "pretraining").mkdir()
        (conf / "pretraining" / "tiny_dual.yaml").write_text(PUBLISHED_YAML)
    return conf


def test_a_model_added_in_two_files_trains_through_the_training_job(cache_dir, tmp_path, monkeypatch):
    (tmp_path / "tiny_dual_model.py").write_text(MODULE)
    conf = _conf_dir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))

    tiny = [o for o in TINY if not o.startswith("model.")]  # ConVIRT's head sizes
    cfg = compose_train([f"hydra.searchpath=[file://{conf}]", *tiny, "model=tiny_dual", "trainer.max_steps=2"])
    assert (cfg.optimizer.lr, cfg.trainer.grad_clip) == (2e-3, 1.0)
    assert cfg.optimizer._target_ == "torch.optim.Adam"  # the rest of the base optimizer stays
    assert cfg.scheduler._target_ == "transformers.get_cosine_schedule_with_warmup"  # the phantom schedule

    run = tmp_path / "run"
    metrics = run_training(cfg, run)
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [1, 2]
    assert "TinyDual" in (run / "resolved_config.yaml").read_text()
    assert any(k.startswith("zeroshot_cls") for k in metrics), sorted(metrics)


def test_paper_mode_for_a_model_is_one_file_and_without_it_the_model_is_refused(tmp_path):
    paper = ["model=tiny_dual", "experiment=syncxr_paper"]
    with pytest.raises(MissingConfigException, match="pretraining/tiny_dual"):
        compose_train([f"hydra.searchpath=[file://{_conf_dir(tmp_path / 'a')}]", *paper])
    cfg = compose_train([f"hydra.searchpath=[file://{_conf_dir(tmp_path / 'b', published=True)}]", *paper])
    # The published values win over the model's own defaults; the rest of the paper recipe applies.
    assert (cfg.model.dim, cfg.model.tau, cfg.optimizer.lr, cfg.trainer.grad_clip) == (16, 0.2, 1e-4, 1.0)
    assert cfg.scheduler == {"_target_": "transformers.get_constant_schedule", "_partial_": True}
    assert cfg.image_encoder.arch == "resnet50" and cfg.evaluation.protocol == "paper"
    # scheduler=... on the command line still chooses, as in every other mode.
    cfg = compose_train([f"hydra.searchpath=[file://{tmp_path / 'b' / 'conf'}]", *paper, "scheduler=plateau"])
    assert cfg.scheduler._target_ == "torch.optim.lr_scheduler.ReduceLROnPlateau" and cfg.optimizer.lr == 1e-4
