"""OmegaConf resolvers used by the Hydra configs; imported by every entry point."""

from __future__ import annotations

import hashlib

from omegaconf import OmegaConf

MAX_DIRNAME = 120  # well under the 255-byte file-name limit


def run_dirname(overrides: str) -> str:
    """A directory name from a run's overrides: the same overrides always give the same name
    (so re-running a command resumes it), path separators are flattened and long names are cut
    to a prefix plus a hash of the whole."""
    if not overrides:
        return "default"
    name = overrides.replace("/", "_")
    if len(name) > MAX_DIRNAME:
        digest = hashlib.sha1(overrides.encode()).hexdigest()[:10]
        name = f"{name[:MAX_DIRNAME - 11]}-{digest}"
    return name


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("run_dirname"):
        OmegaConf.register_new_resolver("run_dirname", run_dirname)


register_resolvers()
