"""A run directory's config is data: evaluate.py / load_trained build only the `_target_`s that the
project's config groups offer (conf/), so a tampered resolved_config.yaml cannot run code (a planted
pickle, a shell command), neither at the top of a section nor nested under an allowed target."""

from __future__ import annotations

import builtins
import pickle
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf

from syncxr.config_targets import UntrustedTargetError, check_targets, project_targets
from syncxr.eval.checkpoint import load_trained
from syncxr.eval.evaluation_job import run_evaluation
from tests.eval.conftest import untrained_run  # noqa: F401  (the cheapest run dir: an untrained TINY model)
from tests.helpers import compose_eval, compose_train

IMAGE_ENCODER = "syncxr.models.image_encoder.build_image_encoder"


class _Planted:
    """Unpickling it creates the marker file: the proof that code from the run dir ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


def _planted_pickle(tmp_path: Path) -> tuple[Path, Path]:
    marker, pkl = tmp_path / "pwned", tmp_path / "planted.pkl"
    pkl.write_bytes(pickle.dumps(_Planted(marker)))
    return pkl, marker


def _tampered_run(run_dir: Path, tmp_path: Path, edit) -> Path:
    """A copy of `run_dir` whose resolved_config.yaml `edit` (a function of the config dict) changed."""
    out = tmp_path / "run"
    shutil.copytree(run_dir, out)
    cfg = yaml.safe_load((out / "resolved_config.yaml").read_text())
    edit(cfg)
    (out / "resolved_config.yaml").write_text(yaml.safe_dump(cfg))
    return out


def _read_pickle(pkl: Path) -> dict:
    return {"_target_": "pandas.read_pickle", "_args_": [str(pkl)]}


# (name, edit(cfg, pkl, marker), key the error names, target the error names)
ATTACKS = [
    (
        "section_read_pickle",
        lambda c, p, m: c.update(image_encoder=_read_pickle(p)),
        "image_encoder._target_",
        "pandas.read_pickle",
    ),
    (
        "section_os_system",
        lambda c, p, m: c.update(text_encoder={"_target_": "os.system", "_args_": [f"touch {m}"]}),
        "text_encoder._target_",
        "os.system",
    ),
    (
        "nested_under_allowed",
        lambda c, p, m: c["image_encoder"].update(weights_path=_read_pickle(p)),
        "image_encoder.weights_path._target_",
        "pandas.read_pickle",
    ),
    (
        "args_under_allowed",
        lambda c, p, m: c["text_encoder"].update(_args_=[_read_pickle(p)]),
        "text_encoder._args_[0]._target_",
        "pandas.read_pickle",
    ),
    (
        "section_not_built_by_load",
        lambda c, p, m: c.update(optimizer={"_target_": "builtins.exec", "_partial_": True}),
        "optimizer._target_",
        "builtins.exec",
    ),
]


def test_the_planted_pickle_runs_when_unpickled(tmp_path):
    """Guards the guard: the attack below is real (reading the pickle creates the marker)."""
    pkl, marker = _planted_pickle(tmp_path)
    pd.read_pickle(pkl).close()
    assert marker.exists()


@pytest.mark.parametrize("name,edit,key,target", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_load_trained_refuses_a_tampered_run_dir(untrained_run, tmp_path, name, edit, key, target):  # noqa: F811
    pkl, marker = _planted_pickle(tmp_path)
    run = _tampered_run(untrained_run, tmp_path, lambda c: edit(c, pkl, marker))
    with pytest.raises(UntrustedTargetError) as e:
        load_trained(run)
    assert f"{key} = {target!r}" in str(e.value) and "resolved_config.yaml" in str(e.value)
    assert not marker.exists()


def test_evaluate_refuses_a_planted_pickle_and_an_interpolation(untrained_run, tmp_path):  # noqa: F811
    pkl, marker = _planted_pickle(tmp_path)
    run = _tampered_run(untrained_run, tmp_path, lambda c: c.update(image_encoder=_read_pickle(pkl)))
    with pytest.raises(UntrustedTargetError, match=r"image_encoder\._target_ = 'pandas\.read_pickle'"):
        run_evaluation(compose_eval(run, ["task=[zeroshot_cls]"]), tmp_path / "eval")
    # oc.decode would make the pickle-reading node only when the config is resolved, after a check of
    # the file as written: an interpolation is refused as such.
    decode = "${oc.decode:'{_target_: pandas.read_pickle, _args_: [" + str(pkl) + "]}'}"
    run = _tampered_run(untrained_run, tmp_path / "decode", lambda c: c["image_encoder"].update(weights_path=decode))
    with pytest.raises(UntrustedTargetError, match=r"image_encoder\.weights_path holds an interpolation"):
        load_trained(run)
    assert not marker.exists()


def test_an_untampered_run_dir_still_loads(untrained_run, tmp_path):  # noqa: F811
    run = _tampered_run(untrained_run, tmp_path, lambda c: None)
    model, _, cfg = load_trained(run)
    assert cfg.image_encoder._target_ == IMAGE_ENCODER and not model.training


def test_the_allow_list_is_the_targets_of_conf(tmp_path):
    targets = project_targets()
    assert {
        IMAGE_ENCODER,
        "syncxr.models.convirt.ConVIRT",
        "syncxr.models.gloria.GLoRIA",
        "syncxr.models.phantom_text_encoder.phantom_text_encoder",
        "torch.optim.AdamW",
    } <= targets
    assert not {"pandas.read_pickle", "os.system", "builtins.exec"} & targets
    # Nested targets (in mappings and lists) count; an interpolated one does not name a class.
    (tmp_path / "group").mkdir()
    (tmp_path / "group" / "a.yaml").write_text(
        "_target_: pkg.Outer\nparts:\n  - {_target_: pkg.Inner, _partial_: true}\nother: {_target_: '${x}'}\n"
    )
    assert project_targets(tmp_path) == {"pkg.Outer", "pkg.Inner"}
    with pytest.raises(FileNotFoundError, match="no config files"):
        project_targets(tmp_path / "group" / "missing")


@pytest.mark.parametrize(
    "overrides", [[], ["experiment=convirt_paper", "scheduler=plateau"], ["model=gloria", "data=mix", "logger=wandb"]]
)
def test_what_train_py_writes_passes_the_check(overrides):
    """A run dir's config as train.py writes it (resolved) names only the project's targets."""
    cfg = compose_train(overrides)
    check_targets(OmegaConf.create(OmegaConf.to_yaml(cfg, resolve=True)), "resolved_config.yaml")


def test_check_targets_names_the_key_and_the_target():
    allowed = frozenset({"pkg.Ok"})
    check_targets({"a": {"_target_": "pkg.Ok", "b": [1, {"c": "text"}]}}, "cfg.yaml", allowed)
    with pytest.raises(UntrustedTargetError, match=r"cfg\.yaml: a\.b\[1\]\._target_ = 'pkg\.Bad'"):
        check_targets({"a": {"_target_": "pkg.Ok", "b": [1, {"_target_": "pkg.Bad"}]}}, "cfg.yaml", allowed)
    with pytest.raises(UntrustedTargetError, match=r"a\._target_ = \['pkg\.Ok'\]"):  # not a class name at all
        check_targets({"a": {"_target_": ["pkg.Ok"]}}, "cfg.yaml", allowed)
