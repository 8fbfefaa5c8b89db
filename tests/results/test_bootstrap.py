"""The bootstrap's metrics against scikit-learn on resampled images (ties and one-class resamples
included), and the two stages of the paired bootstrap."""

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from syncxr.results.bootstrap import Fixed, MeanAUC, MeanF1, MeanValue, counts, interval, paired_bootstrap


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    labels = (rng.random((120, 3)) < 0.3).astype(int)
    scores = np.round(rng.random((120, 3)), 1)  # coarse: many ties
    return labels, scores, rng.integers(0, 120, size=(40, 120))


def test_counts_are_draws_per_image():
    assert counts(np.array([[0, 0, 2], [1, 2, 2]]), 3).tolist() == [[2, 0, 1], [0, 1, 2]]


def test_auc_f1_and_mean_match_scikit_learn_on_every_resample(data):
    labels, scores, idx = data
    t = np.array([0.5, 0.3, 0.7])
    auc = [np.mean([roc_auc_score(labels[i, c], scores[i, c]) for c in range(3)]) for i in idx]
    f1 = [np.mean([f1_score(labels[i, c], scores[i, c] >= t[c], zero_division=0) for c in range(3)]) for i in idx]
    np.testing.assert_allclose(MeanAUC(labels, scores).values(idx), auc)
    np.testing.assert_allclose(MeanF1(labels, scores, t).values(idx), f1)
    np.testing.assert_allclose(MeanValue(scores[:, 0]).values(idx), scores[idx, 0].mean(1))
    assert MeanAUC(labels, scores).full() == pytest.approx(
        np.mean([roc_auc_score(labels[:, c], scores[:, c]) for c in range(3)])
    )


def test_a_resample_without_positives_leaves_the_class_out():
    labels = np.array([[1, 1], [0, 1], [0, 0], [0, 0]])
    scores = np.array([[0.9, 0.2], [0.1, 0.8], [0.2, 0.1], [0.3, 0.4]])
    idx = np.array([[1, 2, 3, 2], [0, 1, 2, 3]])  # first: class 0 has no positive
    got = MeanAUC(labels, scores).values(idx)
    assert got[0] == pytest.approx(roc_auc_score(labels[idx[0], 1], scores[idx[0], 1]))
    assert got[1] == pytest.approx(np.mean([roc_auc_score(labels[:, c], scores[:, c]) for c in range(2)]))


def test_without_images_the_bootstrap_resamples_seeds_only():
    seeds = [[(Fixed(0.7), Fixed(0.6))], [(Fixed(0.66), Fixed(0.62))], [(Fixed(0.5), Fixed(0.5))]]
    reps = paired_bootstrap(seeds, 3000, np.random.default_rng(1))
    # Each replicate is the mean of 3 seed differences drawn from {0.10, 0.04, 0}.
    possible = {round((a + b + c) / 3, 10) for a in (0.1, 0.04, 0) for b in (0.1, 0.04, 0) for c in (0.1, 0.04, 0)}
    assert {round(r, 10) for r in reps} <= possible
    assert reps.mean() == pytest.approx(0.14 / 3, abs=0.003)
    lo, hi = interval(np.r_[reps, np.nan])
    assert 0 <= lo < 0.14 / 3 < hi <= 0.1


def test_images_are_resampled_jointly_for_the_two_runs():
    # Run b is run a shifted down by 0.1 on every image: drawn jointly, the difference never moves.
    rng = np.random.default_rng(2)
    per_image = rng.random(50)
    reps = paired_bootstrap([[(MeanValue(per_image), MeanValue(per_image - 0.1))]], 200, rng)
    np.testing.assert_allclose(reps, 0.1)
    with pytest.raises(ValueError, match="share the test set"):
        paired_bootstrap([[(MeanValue(per_image), MeanValue(per_image[:-1]))]], 10, rng)
    with pytest.raises(ValueError, match="no seed"):
        paired_bootstrap([], 10, rng)
