"""Training state (optimizer, scheduler, RNG) in two files that load without running code:
`<name>.json` holds the structure and every plain value, `<name>.safetensors` the tensors it refers to.

`state_dict()`s hold nested dicts (some with int keys), lists, tuples, numbers, strings, None,
tensors and numpy arrays; anything else is refused at save time (never pickled). Loading is
`json.loads` and `safetensors.torch.load_file`: a tampered file can give wrong numbers, not run code.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..data.durable import atomic_path

TENSOR, TUPLE, ITEMS, NDARRAY = "__tensor__", "__tuple__", "__items__", "__ndarray__"


def encode(obj, tensors: dict[str, torch.Tensor], where: str = "state"):
    """A JSON-able copy of `obj`; its tensors go into `tensors`, keyed by where they sit."""
    if isinstance(obj, torch.Tensor):
        if where in tensors:
            raise ValueError(f"{where}: two tensors would be stored under one name")
        tensors[where] = obj.detach().cpu().contiguous()
        return {TENSOR: where}
    if isinstance(obj, np.ndarray):
        return {NDARRAY: obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, tuple):
        return {TUPLE: [encode(v, tensors, f"{where}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [encode(v, tensors, f"{where}.{i}") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: encode(v, tensors, f"{where}.{k}") for k, v in obj.items()}
        return {
            ITEMS: [
                [encode(k, tensors, f"{where}.key{i}"), encode(v, tensors, f"{where}.{k}")]
                for i, (k, v) in enumerate(obj.items())
            ]
        }
    raise TypeError(f"{where}: a {type(obj).__name__} cannot be stored without pickle")


def decode(obj, tensors: dict[str, torch.Tensor]):
    if isinstance(obj, list):
        return [decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if TENSOR in obj:
        return tensors[obj[TENSOR]]
    if NDARRAY in obj:
        return np.asarray(obj[NDARRAY], dtype=np.dtype(obj["dtype"]))
    if TUPLE in obj:
        return tuple(decode(v, tensors) for v in obj[TUPLE])
    if ITEMS in obj:
        return {_hashable(decode(k, tensors)): decode(v, tensors) for k, v in obj[ITEMS]}
    return {k: decode(v, tensors) for k, v in obj.items()}


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


def save_state(directory: Path, name: str, state) -> None:
    """`state` as `<name>.json` (+ `<name>.safetensors` when it holds tensors), each written atomically."""
    tensors: dict[str, torch.Tensor] = {}
    blob = json.dumps(encode(state, tensors))
    if tensors:
        with atomic_path(directory / f"{name}.safetensors") as tmp:
            save_file(tensors, str(tmp))
    with atomic_path(directory / f"{name}.json") as tmp:
        tmp.write_text(blob)


def load_state(directory: Path, name: str, like=None):
    """What `save_state` wrote; tensors come back on the CPU. With `like` (the state_dict of the live
    object it will be loaded into) its values must be of the kinds `like` holds (`check_like`). Any fault
    names the file (ValueError)."""
    json_file, tensor_file = directory / f"{name}.json", directory / f"{name}.safetensors"
    try:
        blob = json.loads(json_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{json_file}: {type(e).__name__}: {e}") from e
    try:
        # load_file's tensors are views of a copy-on-write mmap of the file: restored optimizer state
        # would live in a mapping of a checkpoint that the main process deletes a few steps later
        # (keep_checkpoints), where pages not yet written still read the file. Copies own their memory.
        tensors = {k: v.clone() for k, v in load_file(str(tensor_file)).items()} if tensor_file.is_file() else {}
    except (OSError, SafetensorError) as e:
        raise ValueError(f"{tensor_file}: {type(e).__name__}: {e}") from e
    try:
        state = decode(blob, tensors)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{json_file}: does not match {tensor_file.name}: {type(e).__name__}: {e}") from e
    if like is not None:
        try:
            check_like(state, like)
        except ValueError as e:
            raise ValueError(f"{json_file}: {e}") from e
    return state


def check_like(value, template, where: str = "state") -> None:
    """Raises ValueError naming the key (`where` and the path below it) when `value` holds another kind of thing than
    `template` where both have one: a number for a number, a flag for a flag, a string for a string, a
    tensor for a tensor, containers of the same length. A wrong kind would load without complaint and
    fail (or silently mis-train) steps later. Keys only one side has pass: torch fills defaults in."""

    def fail(wanted: str):
        return ValueError(f"{where} is {value!r:.60}, not {wanted}")

    if template is None:  # unset options (foreach, fused, ...): any value torch accepts
        return
    if isinstance(template, bool):
        if not isinstance(value, bool):
            raise fail("a boolean")
    elif isinstance(template, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail("a number")
    elif isinstance(template, str):
        if not isinstance(value, str):
            raise fail("a string")
    elif isinstance(template, torch.Tensor):
        if not isinstance(value, torch.Tensor):
            raise fail("a tensor")
    elif isinstance(template, (list, tuple)):
        if not isinstance(value, (list, tuple)) or len(value) != len(template):
            raise fail(f"a list of {len(template)}")
        for i, (v, t) in enumerate(zip(value, template)):
            check_like(v, t, f"{where}.{i}")
    elif isinstance(template, dict):
        if not isinstance(value, dict):
            raise fail("a dict")
        for key in template.keys() & value.keys():
            check_like(value[key], template[key], f"{where}.{key}")


def check_optimizer_state(optimizer: torch.optim.Optimizer, where: Path) -> None:
    """After `optimizer.load_state_dict`: every parameter's state (moments, momentum, step) is a
    tensor of the parameter's shape (or a scalar, or unset). A fresh optimizer has no such state to
    compare with (`check_like`), and a wrong one fails only at the next step."""
    for group, params in enumerate(g["params"] for g in optimizer.param_groups):
        for i, param in enumerate(params):
            for key, value in optimizer.state.get(param, {}).items():
                ok = (
                    value is None
                    or (isinstance(value, (int, float)) and not isinstance(value, bool))
                    or (isinstance(value, torch.Tensor) and (value.dim() == 0 or value.shape == param.shape))
                )
                if not ok:
                    shown = tuple(value.shape) if isinstance(value, torch.Tensor) else repr(value)[:60]
                    raise ValueError(
                        f"{where}: state of parameter {i} of group {group}: {key} is {shown}, not a "
                        f"tensor of the parameter's shape {tuple(param.shape)}"
                    )
