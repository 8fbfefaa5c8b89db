"""experiment=phantom_grounding (issue 24): GLoRIA at the budget and input size the grounding
measurements chose, scored on the three grounding twins by its own jobs and by evaluate.py alike.
Whether its maps beat the random map across seeds is measured, not tested: one preset run is over
ten minutes on two cores (bench/grounding_seeds.py; docs/evaluation.md#the-grounding-preset)."""

from __future__ import annotations

from omegaconf import OmegaConf

from syncxr.config_validation import validate
from tests.helpers import compose_config, compose_train

TWINS = ["rsna", "siim", "covid_rural"]


def test_the_preset_trains_gloria_for_its_whole_step_budget_on_every_data_choice():
    base = compose_train()
    for data in ("syn", "real", "mix"):
        cfg = compose_train(["experiment=phantom_grounding", f"data={data}"])
        validate(cfg)
        assert cfg.model.name == "gloria"
        assert cfg.trainer.max_steps > 2 * base.trainer.max_steps
        # No epoch cap cuts the budget short: mix holds both corpora, syn and real one each.
        rows = 2 * cfg.phantom.n if data == "mix" else cfg.phantom.n
        assert cfg.trainer.max_epochs * (rows // cfg.loader.batch_size) >= cfg.trainer.max_steps
        # Trained at the twins' rendered side: GLoRIA's third stage is 8 x 8, not 6 x 6 at 96 px.
        assert cfg.loader.image_size == cfg.phantom.image_size == 128
        # The main default is untouched.
        assert base.model.name == "convirt" and base.loader.image_size == 96


def test_the_preset_jobs_and_evaluate_py_score_the_same_maps_on_the_three_twins():
    job = compose_train(["experiment=phantom_grounding"]).task
    assert list(job.zeroshot_grounding.datasets) == TWINS and "zeroshot_cls" in job
    evaluated = compose_config("evaluate", ["checkpoint=/runs/x", "task=[zeroshot_grounding]"]).task
    keys = ("map", "reference", "upscale", "image_size", "mask_size", "prompts")
    as_job = {k: OmegaConf.to_container(job.zeroshot_grounding)[k] for k in keys}
    assert as_job == {k: OmegaConf.to_container(evaluated.zeroshot_grounding)[k] for k in keys}
    assert as_job["map"] == "contrast" and as_job["upscale"] == "auto" and as_job["image_size"] is None
    assert as_job["reference"] == "normal"  # each map less the validation split's normal map
    # One prompt per side, their maps combined per cell by their max.
    assert as_job["prompts"]["positive"] == ["right {}.", "left {}."] and as_job["prompts"]["ensemble"] == "max"
    paper = compose_train(["experiment=phantom_grounding", "recipe=paper"]).task.zeroshot_grounding
    assert (paper.map, paper.reference) == ("final_conv", "none")  # the published pipeline subtracts nothing
    assert (list(paper.prompts.positive), paper.prompts.ensemble) == (["{}"], "mean")
