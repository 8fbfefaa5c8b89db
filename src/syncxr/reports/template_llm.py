"""The phantom world's "LLM": writes a section from its entities with sentence templates.

With `error_rate` > 0 it sometimes leaves out an entity, as real LLMs do, so the NER check and the
regeneration path of the report loop are exercised by the default pipeline.
"""

from __future__ import annotations

import numpy as np

from ..phantom.vocabulary import ANATOMY, NON_ABNORMALITY, NON_DISEASE
from .requests import ReportRequest

POSITIVE = ("There is {x} in the {a}.", "{X} is seen in the {a}.", "{X} involving the {a}.")
POSITIVE_NO_SITE = ("There is {x}.", "{X} is present.", "{X}.")
NEGATIVE = ("No {x}.", "There is no {x}.", "No evidence of {x}.")
NEGATIVE_PAIR = ("No {x} or {y}.", "There is no {x} or {y}.")
ANATOMY_ONLY = ("The {a} is unremarkable.", "The {a} appears normal.")


def _cap(s: str) -> str:
    return s[0].upper() + s[1:]


class TemplateLLM:
    name = "template"
    quality: dict = {}  # measured figures (syncxr.backends); a learned preset's factory sets its own

    def __init__(self, error_rate: float):
        if not 0.0 <= error_rate < 1.0:
            raise ValueError(f"template llm error_rate must be in [0, 1), got {error_rate}")
        self.error_rate = error_rate
        self.calls = 0

    def _write(self, req: ReportRequest) -> str:
        rng = np.random.default_rng([req.seed, 0 if req.section == "findings" else 1])
        ents = list(req.entities)
        if ents and rng.random() < self.error_rate:
            ents.pop(int(rng.integers(len(ents))))  # an omission the NER check must catch
        present = [e["name"] for e in ents if e["type"] not in (NON_ABNORMALITY, NON_DISEASE, ANATOMY)]
        absent = [e["name"] for e in ents if e["type"] in (NON_ABNORMALITY, NON_DISEASE)]
        anatomy = [e["name"] for e in ents if e["type"] == ANATOMY]
        rng.shuffle(present)
        out = []
        for x in present:
            if anatomy:
                t = POSITIVE[int(rng.integers(len(POSITIVE)))]
                out.append(t.replace("{X}", _cap(x)).format(x=x, a=anatomy.pop(0)))
            else:
                t = POSITIVE_NO_SITE[int(rng.integers(len(POSITIVE_NO_SITE)))]
                out.append(t.replace("{X}", _cap(x)).format(x=x))
        for a in anatomy:
            out.append(ANATOMY_ONLY[int(rng.integers(len(ANATOMY_ONLY)))].format(a=a))
        while absent:
            x = absent.pop()
            if absent and rng.random() < 0.5:
                out.append(NEGATIVE_PAIR[int(rng.integers(2))].format(x=x, y=absent.pop()))
            else:
                out.append(NEGATIVE[int(rng.integers(len(NEGATIVE)))].format(x=x))
        if req.section == "impression":
            out = out[:1] + sorted(out[1:])  # a terser, differently ordered summary
        return " ".join(out)

    def generate(self, requests: list[ReportRequest]) -> list[str | None]:
        self.calls += len(requests)
        return [self._write(r) for r in requests]

    def counters(self) -> dict:
        return {"llm_calls": self.calls}
