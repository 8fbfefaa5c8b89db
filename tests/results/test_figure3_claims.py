"""Figure 3's claims (issue 21, item 11): the best report LLM and the best image generator against
each other one, and "more entities help" as a trend over every swept entity ratio (Spearman rho with
the two-stage bootstrap interval), on fake sweeps."""

import re

import numpy as np

from syncxr.results.jobs import find_jobs, results_frame
from syncxr.results.sweep import write_report
from syncxr.results.trend import _rho, all_claims
from tests.results.fake_sweep import write_sweep

HEAD = r"^- convirt, data=syn, zero-shot, seen diseases, mean AUC over CheXpert: "
CI = r"95% CI \[[+-]\d+\.\d\d, [+-]\d+\.\d\d\]"


def test_best_llm_is_compared_with_each_other_llm(tmp_path):
    signal = {"llama31_70b": 0.9, "llama31_8b": 0.4, "meditron3_8b": 0.3, "meditron3_70b": 0.5}
    text = write_report(write_sweep(tmp_path / "s", signal, axis="llm"), n_boot=200)[1].read_text()
    for other in ("llama31_8b", "meditron3_8b", "meditron3_70b"):
        assert re.search(
            HEAD + rf"llm=llama31_70b > llm={other} by \+\d+\.\d\d points, {CI} .*"
            r"Paper: Llama 3.1 70B is the best report LLM \(Figure 3\) \(llm=llama31_70b > llm=" + other + r"\)\. "
            r"Agrees with the paper\.$",
            text,
            re.M,
        ), text
    assert "llm=llama31_8b > llm=meditron" not in text  # only the named best against the others


def test_an_image_generator_beating_roentgen_disagrees(tmp_path):
    signal = {"roentgen": 0.6, "cxr_irgen": 1.2, "llm_cxr": 0.1}
    text = write_report(write_sweep(tmp_path / "s", signal, axis="imagegen"), n_boot=200)[1].read_text()
    assert re.search(HEAD + r"imagegen=roentgen < imagegen=cxr_irgen by -.*Disagrees with the paper\.$", text, re.M)
    assert re.search(HEAD + r"imagegen=roentgen > imagegen=llm_cxr by \+.*Agrees with the paper\.$", text, re.M)


def _trend(text: str) -> tuple[float, float, float, str]:
    (m,) = re.findall(
        HEAD + r"trend over entity_ratio 0\.25, 0\.5, 0\.75, 1: Spearman rho ([+-]\d\.\d\d), 95% CI "
        r"\[([+-]\d\.\d\d), ([+-]\d\.\d\d)\] \(bootstrap over seeds and test images; rho > 0 in \d/3 seeds\)\. "
        r"Paper: zero-shot classification improves as more entities are used \(§4\.3, Figure 3 top\)\. (.*)\.$",
        text,
        re.M,
    )
    return float(m[0]), float(m[1]), float(m[2]), m[3]


def test_more_entities_help_is_a_trend_over_every_ratio(tmp_path):
    rising = {"0.25": 0.2, "0.5": 0.5, "0.75": 0.8, "1.0": 1.1}
    text = write_report(
        write_sweep(tmp_path / "a", rising, seeds=(0, 1, 2), axis="generation.entity_ratio"), n_boot=300
    )
    rho, lo, hi, verdict = _trend(text[1].read_text())
    assert rho == 1.0 and lo > 0 and verdict == "Agrees with the paper"
    # The ends agree (1.0 above 0.25), the ratios between do not follow: no trend.
    zigzag = {"0.25": 0.4, "0.5": 0.9, "0.75": 0.1, "1.0": 0.6}
    sweep = write_sweep(tmp_path / "b", zigzag, seeds=(0, 1, 2), axis="generation.entity_ratio")
    text = write_report(sweep, n_boot=300)[1].read_text()
    assert re.search(HEAD + r"entity_ratio=1\.0 > entity_ratio=0\.25 by \+.*Agrees with the paper\.$", text, re.M)
    rho, lo, hi, verdict = _trend(text)
    assert abs(rho) < 0.5 and lo <= 0 <= hi and verdict.startswith("Inconclusive")
    jobs = find_jobs(sweep)
    trend = [c for c in all_claims(jobs, results_frame(jobs), n_boot=50) if c.a == "more entities"]
    assert [c.metric for c in trend] == ["auc", "f1"] and all(c.images for c in trend)


def test_rho_is_spearman():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    x, y = np.array([0.25, 0.5, 0.75, 1.0]), rng.normal(size=(20, 4))
    assert np.allclose(_rho(x, y), [spearmanr(x, row).statistic for row in y])


def test_phantom_world_figure3_claims_compare_the_learned_backends(tmp_path):
    """The phantom sweeps compare the learned backends: the larger LM against the smaller, the better
    generator against the weaker; the template LLM and the renderer are in the table, not the claim."""
    llms = {"template": 1.5, "phantom_lm_small": 0.9, "phantom_lm_large": 0.3}
    text = write_report(write_sweep(tmp_path / "l", llms, axis="llm"), n_boot=200)[1].read_text()
    assert re.search(
        HEAD + rf"llm=phantom_lm_large < llm=phantom_lm_small by -\d+\.\d\d points, {CI} .*"
        r"Paper: the larger LLM makes better data \(Figure 3\).*Disagrees with the paper\.$",
        text,
        re.M,
    ), text
    assert "llm=template >" not in text and "> llm=template" not in text
    gens = {"phantom": 0.2, "phantom_diffusion": 0.8, "phantom_diffusion_weak": 0.1}
    text = write_report(write_sweep(tmp_path / "g", gens, axis="imagegen"), n_boot=200)[1].read_text()
    assert re.search(
        HEAD + r"imagegen=phantom_diffusion > imagegen=phantom_diffusion_weak by \+.*"
        r"the better generator makes better data.*Agrees with the paper\.$",
        text,
        re.M,
    ), text
