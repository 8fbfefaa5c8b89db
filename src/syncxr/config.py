"""How config becomes things: the OmegaConf resolvers every entry point registers, run-directory
names, and `build`, the one way a config section with a `_target_` becomes an object."""

from __future__ import annotations

import hashlib
import os
import re

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

MAX_DIRNAME = 120  # well under the 255-byte file-name limit
# The last component of a key that holds a secret (max_tokens and the like are not).
SECRET_KEY = re.compile(r"(api_?key|(auth|access|api|hf|wandb)?_?token|\w*secret|password)", re.IGNORECASE)
# Keys that name a choice (in reports, commands and dataset addresses) without being an argument of
# its `_target_`: `name` is the choice, `backend` the family of model behind it (phantom, openai, ...).
# `requires`: the keys a preset cannot run without (a null one is a missing prerequisite, see
# `paper_prerequisites.declared_missing`); `refused`: why a preset cannot run at all (its class refuses to build).
LABEL_KEYS = ("name", "backend", "requires")
# Keys that say how to reach or drive a backend, not what it makes: never part of a dataset address,
# so rotating a key, moving a server or raising a timeout finds the same data.
# (`code_dir`, `taming_dir`: where a research release's own package was cloned.)
TRANSPORT_KEYS = (
    "base_url",
    "base_urls",
    "api_key_env",
    "concurrency",
    "timeout_s",
    "max_retries",
    "backoff_s",
    "code_dir",
    "taming_dir",
    "cache_dir",  # where a learned phantom backend is cached, not what it is
)
# What every backend preset (conf/{llm,ner,imagegen,curation,i2r}/*.yaml) declares about itself: true
# when it is the phantom world's own, runs on the CPU and needs no external weights (so its data is made
# on first use, costs no GPU time and changes with the phantom world's version). Read by
# `is_phantom_preset` only; it is no argument of the `_target_` and no part of any dataset address.
PHANTOM_KEY = "phantom_world"
# The config groups whose presets declare PHANTOM_KEY.
BACKEND_GROUPS = ("llm", "ner", "imagegen", "curation", "i2r")


class ConfigError(ValueError):
    """A config value or override the entry points refuse; the message names the key and what it may be.
    The entry points print it as one line and exit non-zero (syncxr.entry_point)."""


def secret_keys(overrides) -> list[str]:
    """The keys of Hydra overrides (`key=value`, `+key=value`, ...) that name a secret."""
    keys = [item.split("=", 1)[0].lstrip("+~") for item in overrides if "=" in item]
    return [k for k in keys if SECRET_KEY.fullmatch(k.rsplit(".", 1)[-1])]


def secret_error(key: str) -> str:
    return (
        f"{key}: secrets are not config values (they would be written into the run's name and files); "
        "put the key in the environment variable the config names (api_key_env)"
    )


def refuse_secrets(overrides) -> None:
    secret = secret_keys(overrides)
    if secret:
        raise ConfigError(secret_error(secret[0]))


def plain(section) -> dict:
    """A config section as a plain, resolved dict (a dict passes through as a copy)."""
    return OmegaConf.to_container(section, resolve=True) if isinstance(section, DictConfig) else dict(section)


def build(section, key: str, **runtime):
    """The object of a config section: its `_target_` called with the section's other keys (labels
    aside, nested sections as plain dicts) and `runtime` (arguments that exist only at run time, such
    as the encoders of a model). Errors name the config `key` of the section."""
    spec = {k: v for k, v in plain(section).items() if k not in LABEL_KEYS and k != PHANTOM_KEY}
    if "_target_" not in spec:
        raise ValueError(f"{key}: no _target_ (the class or function that builds it); got keys {sorted(spec)}")
    try:
        return instantiate(spec, _convert_="all", **runtime)
    except InstantiationException as e:  # keep the constructor's own error type, name the key
        cause = e.__cause__
        if isinstance(cause, ImportError):
            raise ValueError(f"{key}._target_: no class or function {spec['_target_']!r} ({cause})") from cause
        if isinstance(cause, (TypeError, ValueError, OSError)):
            raise type(cause)(f"{key} ({spec['_target_']}): {cause}") from cause
        raise


def is_phantom_preset(section, key: str) -> bool:
    """Whether the backend preset `section` (mounted at config `key`) is the phantom world's own, as
    it declares in PHANTOM_KEY: the one place that question is answered."""
    value = plain(section).get(PHANTOM_KEY) if section is not None else None
    if not isinstance(value, bool):
        raise ConfigError(
            f"{key}.{PHANTOM_KEY}: every backend preset declares whether it is the phantom "
            f"world's own (true: runs on the CPU without external weights), got {value!r}"
        )
    return value


def without_phantom_key(config):
    """`config` without PHANTOM_KEY at any level: what a config names without the presets' declarations."""
    if isinstance(config, dict):
        return {k: without_phantom_key(v) for k, v in config.items() if k != PHANTOM_KEY}
    if isinstance(config, (list, tuple)):
        return [without_phantom_key(v) for v in config]
    return config


def without_transport_keys(config, batching: tuple[tuple[str, ...], ...] = (), _path: tuple[str, ...] = ()):
    """`config` without TRANSPORT_KEYS nor PHANTOM_KEY (a preset's declaration, implied by its
    `_target_` and settings) at any level, nor the keys at the paths in `batching`: the batch
    sizes of backends whose answers do not depend on how requests are grouped (each item has its own
    seed, or none). A batch size that does change the answers (a seed per batch) stays."""
    if isinstance(config, dict):
        return {
            k: without_transport_keys(v, batching, (*_path, k))
            for k, v in config.items()
            if k not in TRANSPORT_KEYS and k != PHANTOM_KEY and (*_path, k) not in batching
        }
    if isinstance(config, (list, tuple)):
        return [without_transport_keys(v, batching, _path) for v in config]
    return config


def run_dirname(overrides: str) -> str:
    """A directory name from a run's overrides: the same overrides always give the same name (so
    re-running a command resumes it) and different overrides never do: a name that had to be changed
    (path separators flattened, or cut to length) carries a hash of the overrides it stands for.
    An override that names a secret is refused: it would be written into the name and .hydra/."""
    if not overrides:
        return "default"
    refuse_secrets(overrides.split(","))
    name = overrides.replace("/", "_")
    if name != overrides or len(name) > MAX_DIRNAME:
        digest = hashlib.sha1(overrides.encode()).hexdigest()[:10]
        name = f"{name[: MAX_DIRNAME - 11]}-{digest}"
    return name


def launch_id() -> str:
    """A short random name part that tells apart launches started in the same second (sweep dirs are
    `<time>-<launch_id>`). Registered with use_cache: the first resolution is cached in the root
    config, which hydra copies into every job's config (load_sweep_config) and submitit pickles
    with it to the jobs, also requeued ones on other machines, so one launch sees one value."""
    return os.urandom(3).hex()


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("run_dirname"):
        OmegaConf.register_new_resolver("run_dirname", run_dirname)
    if not OmegaConf.has_resolver("launch_id"):
        OmegaConf.register_new_resolver("launch_id", launch_id, use_cache=True)


register_resolvers()
