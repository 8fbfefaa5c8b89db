import numpy as np
import pytest

from syncxr.entities.lexicon_ner import LexiconNER
from syncxr.images.phantom_t2i import findings_from_entities
from syncxr.phantom.vocabulary import FINDING_KEYS, phantom_lexicon
from syncxr.reports.i2r_prompt import split_report
from syncxr.reports.oracle_i2r import OracleRadiologist

NER = LexiconNER(phantom_lexicon())
LABELS = [["pleural_effusion"], ["cardiomegaly", "pneumothorax"], [], ["edema", "nodule", "atelectasis"]]
BLANK = [np.zeros((8, 8), np.uint8)] * len(LABELS)


def _reported(text: str) -> list[str]:
    findings, _ = split_report(text)
    return findings_from_entities(NER.extract(findings))[0]


def test_a_perfect_oracle_reports_exactly_the_labels_in_new_words():
    oracle = OracleRadiologist(miss_rate=0.0, false_positive_rate=0.0, negation_rate=0.5)
    texts = oracle.describe(BLANK, [1, 2, 3, 4], labels=LABELS)
    assert [_reported(t) for t in texts] == [sorted(ls) for ls in LABELS]
    again = oracle.describe(BLANK, [1, 2, 3, 4], labels=LABELS)
    other = oracle.describe(BLANK, [11, 12, 13, 14], labels=LABELS)
    assert texts == again and texts != other  # seeded: a retry writes a different report
    assert oracle.counters()["oracle_calls"] == 12 and oracle.counters()["oracle_missed"] == 0


def test_the_oracle_reads_labels_not_pixels():
    oracle = OracleRadiologist(miss_rate=0.1, false_positive_rate=0.02, negation_rate=0.5)
    bright = [np.full((8, 8), 255, np.uint8)] * len(LABELS)
    assert oracle.reads_labels
    assert oracle.describe(BLANK, [5, 6, 7, 8], LABELS) == oracle.describe(bright, [5, 6, 7, 8], LABELS)


def test_misses_and_false_positives_follow_their_rates():
    blind = OracleRadiologist(miss_rate=1.0, false_positive_rate=0.0, negation_rate=0.5)
    assert all(_reported(t) == [] for t in blind.describe(BLANK, [1, 2, 3, 4], LABELS))
    assert blind.counters()["oracle_missed"] == sum(len(ls) for ls in LABELS)
    paranoid = OracleRadiologist(miss_rate=0.0, false_positive_rate=1.0, negation_rate=0.5)
    assert all(_reported(t) == sorted(FINDING_KEYS) for t in paranoid.describe(BLANK, [1, 2, 3, 4], LABELS))
    n = 400
    half = OracleRadiologist(miss_rate=0.5, false_positive_rate=0.0, negation_rate=0.5)
    kept = sum(len(_reported(t)) for t in half.describe([BLANK[0]] * n, list(range(n)), [["edema"]] * n))
    assert 0.4 < kept / n < 0.6


def test_bad_rates_and_unknown_labels_fail_early():
    with pytest.raises(ValueError, match="miss_rate"):
        OracleRadiologist(miss_rate=1.5, false_positive_rate=0.0, negation_rate=0.5)
    with pytest.raises(ValueError, match="not phantom findings"):
        OracleRadiologist(miss_rate=0.1, false_positive_rate=0.02, negation_rate=0.5).describe(
            BLANK[:1], [0], [["Lung Opacity"]]
        )
