"""OmegaConf resolvers used by the Hydra configs; imported by every entry point."""

from __future__ import annotations

from omegaconf import OmegaConf


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("or_default"):
        # `${or_default:${hydra:job.override_dirname},default}`: a run dir even with no overrides.
        OmegaConf.register_new_resolver("or_default", lambda value, default: value or default)


register_resolvers()
