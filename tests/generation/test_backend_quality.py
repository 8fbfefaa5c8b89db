"""A backend's measured quality figures (a learned backend's build record) reach dataset.json as
`backend_quality` {llm, ner, imagegen}, empty for a backend that was never measured (issue 22)."""

from __future__ import annotations

from syncxr.backends import LLM
from syncxr.data.dataset_format import read_dataset
from syncxr.dataset_dirs import generate_dataset
from syncxr.reports.template_llm import TemplateLLM
from tests.generation.test_pipeline import SMALL, gen_cfg

MEASURED = {"val_loss": 1.25, "first_attempt_rate": 0.5}


def measured_template(**kw) -> TemplateLLM:
    """What a learned preset's factory does: the backend's own class, carrying its build's figures."""
    llm = TemplateLLM(**kw)
    llm.quality = dict(MEASURED)
    return llm


def test_measured_figures_are_recorded_beside_the_unmeasured(cache_dir, tmp_path):
    gen = gen_cfg(SMALL + ["generation.n_samples=20", "generation.shard_size=20"])
    gen["llm"]["_target_"] = f"{__name__}.measured_template"
    info = read_dataset(generate_dataset(gen, tmp_path / "ds", cache_dir, progress=False))[1]
    assert info["backend_quality"] == {"llm": MEASURED, "ner": {}, "imagegen": {}}
    assert TemplateLLM.quality == {} and isinstance(measured_template(error_rate=0.0), LLM)
