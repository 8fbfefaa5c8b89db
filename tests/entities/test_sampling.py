from collections import Counter

import numpy as np
import pandas as pd
import pytest

from syncxr.entities.sampling import balanced_draws, longtail_draws, subset_vocabulary, tau_max_for
from syncxr.entities.vocabulary import gini

TYPES = ["ABNORMALITY", "NON-ABNORMALITY", "DISEASE", "NON-DISEASE", "ANATOMY"]


def _vocab(n=200):
    return pd.DataFrame(
        {
            "name": [f"e{i}" for i in range(n)],
            "type": [TYPES[i % 5] for i in range(n)],
            "count": (1000 / np.arange(1, n + 1) ** 1.2).astype(int) + 1,
        }
    )


def test_balanced_draws_respect_the_cap_and_the_type_split():
    v = _vocab()  # 160 finding entities, 40 anatomy
    # 600 samples x 3 findings over 160 entities = 11.25 each, x 1 anatomy over 40 = 15 each: a cap of 16
    # binds (an uncapped uniform draw puts 20 or more on its busiest entities) yet leaves room for all.
    draws = balanced_draws(v, 600, k=3, m=1, tau_max=16, rng=np.random.default_rng(1))
    counts = Counter(i for d in draws for i in d)
    anatomy = v["type"] == "ANATOMY"
    assert max(counts[i] for i in np.flatnonzero(~anatomy)) == 16
    assert max(counts[i] for i in np.flatnonzero(anatomy)) == 16
    assert sum(counts.values()) == 600 * 4
    for d in draws:
        types = v["type"].iloc[d].tolist()
        assert sum(t != "ANATOMY" for t in types) == 3 and types.count("ANATOMY") == 1
        assert len(set(v["name"].iloc[d])) == 4
    assert draws == balanced_draws(v, 600, 3, 1, 16, np.random.default_rng(1))


def test_tau_max_is_the_balanced_count_times_the_slack():
    assert tau_max_for(120, 2, 40, 1.5) == 9  # 240 draws / 40 entities = 6, x 1.5
    assert tau_max_for(120, 2, 18, 1.5) == 20  # 240 / 18 = 13.3, x 1.5
    assert tau_max_for(100, 3, 7, 1.0) == 43  # 300 / 7 = 42.9, rounded up
    assert tau_max_for(10, 1, 1000, 1.5) == 1  # never below one


def test_longtail_is_far_less_even_than_balanced():
    v = _vocab()
    bal = Counter(i for d in balanced_draws(v, 1500, 3, 2, 100, np.random.default_rng(0)) for i in d)
    lt = Counter(i for d in longtail_draws(v, 1500, 3, 2, np.random.default_rng(0)) for i in d)
    g_bal = gini([bal.get(i, 0) for i in range(len(v))])
    g_lt = gini([lt.get(i, 0) for i in range(len(v))])
    assert g_lt > g_bal + 0.3, (g_bal, g_lt)


def test_entity_ratio_keeps_a_seeded_fraction_of_each_type():
    v = _vocab()
    half = subset_vocabulary(v, 0.5, seed=3)
    assert half["type"].value_counts().to_dict() == {t: 20 for t in TYPES}
    pd.testing.assert_frame_equal(half, subset_vocabulary(v, 0.5, seed=3))
    assert not half.equals(subset_vocabulary(v, 0.5, seed=4))
    with pytest.raises(ValueError, match="entity_ratio"):
        subset_vocabulary(v, 0.0, seed=0)


def test_impossible_requests_fail_clearly():
    v = _vocab(20)
    with pytest.raises(ValueError, match="tau_max"):
        balanced_draws(v, 100, 3, 2, tau_max=2, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="cannot draw"):
        balanced_draws(v, 1, 30, 2, tau_max=5, rng=np.random.default_rng(0))


def test_gini_hand_values():
    assert gini([5, 5, 5, 5]) == pytest.approx(0.0)
    assert gini([0, 0, 0, 10]) == pytest.approx(0.75)
