"""An image generator the paper compared whose public release cannot be run here (imagegen/cxr_irgen.yaml):
its preset says why in `refused`, building it raises that reason (naming the preset's key, through
syncxr.config.build), and `syncxr.paper_prerequisites` lists it without building anything. A
placeholder checkpoint path never runs in its place."""

from __future__ import annotations

from ..reports.release_code import MissingReleaseError


class RefusedT2I:
    name = "refused"
    quality: dict = {}  # measured figures (syncxr.backends); a learned preset's factory sets its own

    def __init__(self, refused: str):
        raise MissingReleaseError(refused)
