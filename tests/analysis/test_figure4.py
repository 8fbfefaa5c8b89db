"""analyze.py's Figure 4: real vs synthetic data along the first principal component of image and
report features, one PCA per modality fitted on both datasets together."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.decomposition import PCA

import syncxr.analysis.feature_pca as feature_pca
from syncxr.analysis.analysis_job import run_analysis
from syncxr.analysis.feature_pca import first_component
from syncxr.analysis.report_features import TfidfReportEmbedder, TransformersReportEmbedder
from tests.analysis.test_analysis_run import SMALL, compose_analysis


class RecordingPCA(PCA):
    """sklearn's PCA, remembering how many rows each fit saw."""

    fitted_rows: list[int] = []

    def fit(self, X, y=None):
        RecordingPCA.fitted_rows.append(len(X))
        return super().fit(X, y)


def test_phantom_default_writes_the_figure_and_its_numbers(cache_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(feature_pca, "PCA", RecordingPCA)
    RecordingPCA.fitted_rows = []
    cfg = compose_analysis(SMALL + [f"paths.cache_dir={cache_dir}", "analyses=[figure4]", "figure4.max_rows=120"])
    assert (cfg.image_features.name, cfg.report_features.name) == ("phantom", "tfidf")  # the phantom default
    summary = run_analysis(cfg, tmp_path)
    assert (tmp_path / "figure4.png").stat().st_size > 10_000
    saved = json.loads((tmp_path / "figure4.json").read_text())
    assert saved == json.loads(json.dumps(summary["figure4"]))
    assert saved["datasets"]["real"] == summary["corpus"] and "phantom" in saved["datasets"]["synthetic"]
    # One PCA per modality, each fitted on the 120 real and 120 synthetic rows together.
    assert RecordingPCA.fitted_rows == [240, 240]
    for modality, embedder in (("images", "phantom"), ("reports", "tfidf")):
        m = saved[modality]
        assert m["embedder"] == embedder and m["pca_fitted_on"] == {"real": 120, "synthetic": 120}
        assert 0 < m["pc1_explained_variance_ratio"] <= 1
        for side in ("real", "synthetic"):
            assert m[side]["rows"] == 120 and m[side]["std"] > 0 and m[side]["p5_p95_range"] > 0
        assert m["std_ratio_synthetic_to_real"] == pytest.approx(m["synthetic"]["std"] / m["real"]["std"])
    assert saved["images"]["feature_dim"] == 256  # the phantom embedding's 16 x 16 thumbnail


def test_the_pca_is_fitted_on_real_and_synthetic_together():
    rng = np.random.default_rng(0)
    # Real varies along x only a little; synthetic varies a lot along y. Fitted on the real rows alone,
    # PC1 would be x (real spread ~1, synthetic ~0.1); fitted on both it is y.
    real = rng.normal(size=(400, 2)) * [1.0, 0.1]
    synthetic = rng.normal(size=(400, 2)) * [0.1, 10.0]
    r, s, explained = first_component(real, synthetic, seed=0)
    assert s.std() > 20 * r.std() and explained > 0.9
    joint = PCA(n_components=1).fit(np.concatenate([real, synthetic]))
    assert np.allclose(np.abs(s), np.abs(joint.transform(synthetic)[:, 0]))
    assert r.mean() <= 0  # the sign is fixed: the figure does not flip between runs
    with pytest.raises(ValueError, match="needs real and synthetic rows"):
        first_component(real, synthetic[:0], seed=0)


def test_tfidf_shares_one_vocabulary_between_real_and_synthetic():
    texts = ["small pleural effusion", "pleural effusion", "no pneumothorax", "no pneumothorax seen"]
    emb = TfidfReportEmbedder(max_features=100, min_df=1).embed(texts)
    assert emb.shape == (4, 6) and np.allclose(np.linalg.norm(emb, axis=1), 1)
    with pytest.raises(ValueError, match="report_features \\(tfidf\\)"):
        TfidfReportEmbedder(max_features=100, min_df=1).embed(["", ""])


def test_the_papers_embedders_from_their_presets(cache_dir, tmp_path, tiny_text_path, tiny_dino_path):
    # RAD-DINO and Med-CPT stand-ins of their kinds: a tiny random Dinov2 and a tiny random BERT.
    cfg = compose_analysis(
        SMALL
        + [
            f"paths.cache_dir={cache_dir}",
            "analyses=[figure4]",
            "figure4.max_rows=24",
            "image_features=rad_dino",
            f"image_features.path={tiny_dino_path}",
            "report_features=medcpt",
            f"report_features.path={tiny_text_path}",
        ]
    )
    assert cfg.report_features.max_length == 512
    summary = run_analysis(cfg, tmp_path)["figure4"]
    assert (summary["images"]["embedder"], summary["reports"]["embedder"]) == ("rad_dino", "medcpt")
    assert summary["images"]["feature_dim"] == 32 and summary["reports"]["feature_dim"] == 32  # hidden sizes
    assert summary["reports"]["pca_fitted_on"] == {"real": 24, "synthetic": 24}
    # The [CLS] state of the last layer, batch by batch, as one pass over all reports gives it.
    emb = TransformersReportEmbedder(tiny_text_path, max_length=512, batch_size=3)
    texts = ["no pleural effusion", "cardiomegaly", "the lungs are clear and there is no pneumothorax"]
    one_by_one = np.concatenate([TransformersReportEmbedder(tiny_text_path, 512, 1).embed([t]) for t in texts])
    assert np.allclose(emb.embed(texts), one_by_one, atol=1e-5)
