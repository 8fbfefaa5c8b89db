"""Which code a config read from disk may name. A run directory's `resolved_config.yaml` (or any
config found in a run, checkpoint, dataset or sweep directory) is data: it may choose among the
classes the project's own config groups offer (`conf/**/*.yaml`), never name any other callable, since
Hydra's `instantiate` imports and calls whatever `_target_` says (`pandas.read_pickle`, `os.system`).
Configs that Hydra composes from the command line are the user's own and are not checked."""

from __future__ import annotations

import functools
from pathlib import Path

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf

# The repository's conf/ (src/syncxr/config_targets.py -> repo root), where the entry points compose from.
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
TARGET = "_target_"


class UntrustedTargetError(ValueError):
    """A config read from disk names code that no config group of the project offers."""


def _targets_in(node) -> set[str]:
    if isinstance(node, dict):
        own = {node[TARGET]} if isinstance(node.get(TARGET), str) else set()
        return own.union(*(_targets_in(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_targets_in(v) for v in node))
    return set()


@functools.cache
def project_targets(conf_dir: Path = CONF_DIR) -> frozenset[str]:
    """Every `_target_` (nested ones included) of every YAML file under `conf_dir`: the allow-list."""
    files = sorted(p for pattern in ("*.yaml", "*.yml") for p in Path(conf_dir).rglob(pattern))
    if not files:  # fail closed: without the project's configs nothing read from disk may be built
        raise FileNotFoundError(
            f"{conf_dir}: no config files, so no allowed _target_ (is syncxr run from its repository checkout?)"
        )
    targets = set()
    for path in files:
        targets |= _targets_in(yaml.safe_load(path.read_text()))
    return frozenset(t for t in targets if "${" not in t)


def check_targets(config, where: str, allowed: frozenset[str] | None = None) -> None:
    """Raises UntrustedTargetError (naming `where`, the key and the target) if `config`, read from a
    file, names a `_target_` outside `allowed` (default: `project_targets()`) at any depth, `_args_`
    and other lists included, or holds an interpolation (`${...}`: resolvers such as oc.decode make new
    nodes, and `instantiate` resolves again what a resolved config still spells as one)."""
    allowed = project_targets() if allowed is None else allowed
    if isinstance(config, (DictConfig, ListConfig)):
        config = OmegaConf.to_container(config, resolve=False)  # raw: no resolver runs before the check
    _check(config, where, allowed, "")


def _check(node, where: str, allowed: frozenset[str], path: str) -> None:
    if isinstance(node, str) and "${" in node:
        raise UntrustedTargetError(
            f"{where}: {path or '<root>'} holds an interpolation ({node!r}); a saved run's "
            "config is written resolved, so it has none"
        )
    if isinstance(node, dict):
        if TARGET in node:
            target = node[TARGET]
            if not isinstance(target, str) or target not in allowed:
                raise UntrustedTargetError(
                    f"{where}: {_join(path, TARGET)} = {target!r} is not a _target_ of the project's config groups "
                    f"(conf/); a config read from disk may only choose among those (refused, nothing was built)"
                )
        for key, value in node.items():
            _check(value, where, allowed, _join(path, str(key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _check(value, where, allowed, f"{path}[{i}]")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def load_checked_config(path: str | Path) -> DictConfig:
    """The YAML config at `path` (a run directory's resolved_config.yaml), refused unless every
    `_target_` in it is one of the project's (see check_targets)."""
    cfg = OmegaConf.load(path)
    if not isinstance(cfg, DictConfig):
        raise ValueError(f"{path}: not a config mapping (got a {type(cfg).__name__})")
    check_targets(cfg, str(path))
    return cfg
