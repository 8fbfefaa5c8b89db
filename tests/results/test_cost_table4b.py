"""The dry run of Table 4b in paper mode prices MedVersa's reports as GPU work, never as the phantom
oracle, also while MIMIC-CXR's rows cannot be counted; and the curation of the images drawn from the
real reports."""

import pytest

from syncxr.config import plain
from syncxr.results.cost import estimate_job, stage_table
from tests.helpers import compose_train


def _job(overrides, data="real_image_syn_report", **cost):
    cfg = plain(compose_train(["experiment=syncxr_paper", f"data={data}", *overrides]))
    return estimate_job(cfg, {**cfg["cost"], **cost}, "/nonexistent-cache")


def test_paper_mode_prices_medversa_reports_on_the_gpu():
    unknown = _job(["real_corpus.root=/nowhere"], unknown_dataset_rows=None)["generation"]
    assert len(unknown) == 1 and unknown[0]["phantom"] is False and unknown[0]["rows_unknown"]
    assert "phantom (CPU)" not in stage_table(unknown) and "real rows unknown" in stage_table(unknown)
    known = _job(["real_corpus.root=/nowhere"], unknown_dataset_rows=1000)["generation"][0]
    assert known["stages"] == {"i2r": pytest.approx(1000 * 2.0 / 3600)}  # conf/cost: medversa 2.0 s a report
    assert "| to make" in stage_table([known])
    cfg = plain(compose_train(["data=real_image_syn_report"]))
    phantom = estimate_job(cfg, cfg["cost"], "/x")["generation"][0]
    assert phantom["phantom"] is True and "phantom (CPU)" in stage_table([phantom])


def test_paper_mode_curates_and_prices_the_images_drawn_from_real_reports():
    job = _job(["real_corpus.root=/nowhere"], data="syn_image_real_report", unknown_dataset_rows=1000)
    (gen,) = job["generation"]
    images = 1000 * 1.2  # conf/cost: images_per_sample
    assert gen["stages"] == {
        "t2i": pytest.approx(images * 1.5 / 3600),  # roentgen
        "curation": pytest.approx(images * 0.3 / 3600),
    }
    cfg = plain(compose_train(["data=syn_image_real_report"]))
    assert cfg["data"]["syn"]["curation"] is None  # the phantom world's set, as before
    phantom = estimate_job(cfg, cfg["cost"], "/x")["generation"][0]
    assert set(phantom["stages"]) == {"t2i"} and phantom["phantom"]
