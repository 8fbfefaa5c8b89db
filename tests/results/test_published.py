"""The published numbers the report carries agree with themselves: the paper's stated seen-disease
averages follow from its Table 1."""

import pytest

from syncxr.results.published import (
    stated_averages,
    stated_difference,
    table1,
    table1_datasets,
    table1_difference,
    table1_value,
)


def test_table1_holds_both_models_and_three_data_choices():
    t = table1()
    pairs = sorted((m, d) for m in ("convirt", "gloria") for d in ("real", "syn", "mix"))
    assert sorted(zip(t["model"], t["data"])) == pairs
    assert table1_value("convirt", "real", "chexpert", "auc") == 52.10
    assert table1_value("gloria", "mix", "siim", "f1") == 56.09
    assert table1_value("convirt", "real_image_syn_report", "chexpert", "auc") is None


@pytest.mark.parametrize("a,metric", [("syn", "auc"), ("syn", "f1"), ("mix", "auc"), ("mix", "f1")])
def test_stated_seen_averages_follow_from_table1(a, metric):
    stated, how = stated_difference("seen", a, "real", metric)
    assert how == "stated"
    from_table = table1_difference(["convirt", "gloria"], a, "real", list(table1_datasets()), metric)
    assert from_table == pytest.approx(stated, abs=0.01)


def test_mix_against_syn_is_derived_from_the_stated_averages():
    assert stated_difference("grounding", "mix", "syn", "iou") == (pytest.approx(4.06 - 1.42), "derived")
    assert stated_difference("grounding", "syn", "mix", "iou") == (pytest.approx(1.42 - 4.06), "derived")
    assert stated_difference("grounding", "syn", "real", "acc") is None  # the paper states none
    assert len(stated_averages()) == 12
