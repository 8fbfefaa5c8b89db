"""Training state in JSON + safetensors: what state_dict()s hold comes back equal; nothing else is stored."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from syncxr.train.state_files import load_state, save_state


def test_state_dict_values_round_trip(tmp_path):
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=7)  # fp16 runs' scaler state
    state = {
        "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(2, 3)}},
        "param_groups": [{"betas": (0.9, 0.999), "params": [0, 1], "lr": 0.1, "fused": None}],
        "best": math.inf,
        "mode": "min",
        "flag": True,
        "rng": (3, tuple(range(5)), None),
        "numpy": {"key": np.arange(4, dtype=np.uint32), "pos": 2},
        "scaler": scaler.state_dict(),
    }
    save_state(tmp_path, "s", state)
    back = load_state(tmp_path, "s")
    assert back["param_groups"] == state["param_groups"] and isinstance(back["param_groups"][0]["betas"], tuple)
    assert torch.equal(back["state"][0]["exp_avg"], state["state"][0]["exp_avg"]) and 0 in back["state"]
    assert back["best"] == math.inf and back["rng"] == state["rng"] and back["scaler"] == scaler.state_dict()
    assert back["numpy"]["key"].dtype == np.uint32 and back["numpy"]["key"].tolist() == [0, 1, 2, 3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json", "s.safetensors"]


def test_objects_that_would_need_pickle_are_refused(tmp_path):
    with pytest.raises(TypeError, match=r"state.fn: a function cannot be stored without pickle"):
        save_state(tmp_path, "s", {"fn": lambda: 0})
    assert not list(tmp_path.iterdir())


def test_restored_optimizer_state_is_independent_of_its_file(tmp_path):
    """Restored tensors own their memory: safetensors' load_file maps the file copy-on-write, and a
    page of such a mapping that was not written yet still reads the file, so optimizer state restored
    from it changed whenever the checkpoint file did (and vanishes with it on a network file system)."""
    param = torch.nn.Parameter(torch.zeros(4096))  # 16 KiB of state: several pages
    opt = torch.optim.Adam([param])
    param.grad = torch.ones(4096)
    opt.step()
    save_state(tmp_path, "optimizer", opt.state_dict())
    restored = torch.optim.Adam([torch.nn.Parameter(torch.zeros(4096))])
    restored.load_state_dict(load_state(tmp_path, "optimizer"))
    expected = {k: v.clone() for k, v in restored.state_dict()["state"][0].items()}
    tensor_file = tmp_path / "optimizer.safetensors"
    size = tensor_file.stat().st_size
    with tensor_file.open("r+b") as f:  # the file rewritten in place (a copy, a sync tool, another host)
        f.write(b"\0" * size)
    state = restored.state_dict()["state"][0]
    for k, v in expected.items():
        assert torch.equal(state[k], v), k
