import pandas as pd
import pytest

from syncxr.generation.attempts import attempt_stats


def test_attempt_stats_from_counters():
    df = pd.DataFrame({"report_attempts": [2, 4, 3], "image_attempts": [1, 1, 2]})
    counters = {
        "findings_first_answers": 4,
        "findings_first_passed": 2,
        "impression_first_answers": 4,
        "impression_first_passed": 3,
        "findings_rejected": 3,
        "impression_rejected": 1,
        "findings_unasked_entities": 5,
        "impression_unasked_entities": 1,
    }
    a = attempt_stats(df, 4, counters, 5, 3)
    assert a["first_attempt_exact_rate"] == pytest.approx(5 / 8)
    assert (a["unasked_entities"], a["unasked_per_rejected_answer"]) == (6, pytest.approx(6 / 4))
    assert (a["dropped_samples"], a["drop_rate"], a["mean_report_attempts"]) == (1, 0.25, 3.0)
    assert attempt_stats(df, 3, {}, 5, 3)["first_attempt_exact_rate"] == 0.0  # no answers: no rate, no crash
