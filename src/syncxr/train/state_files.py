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
        return {ITEMS: [[encode(k, tensors, f"{where}.key{i}"), encode(v, tensors, f"{where}.{k}")]
                        for i, (k, v) in enumerate(obj.items())]}
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


def load_state(directory: Path, name: str):
    """What `save_state` wrote; tensors come back on the CPU. Any fault names the file (ValueError)."""
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
        return decode(blob, tensors)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{json_file}: does not match {tensor_file.name}: {type(e).__name__}: {e}") from e
