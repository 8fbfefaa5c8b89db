import numpy as np
import pytest

from syncxr.images.curation import Curator, load_image_bank, phantom_bad_images
from syncxr.images.embedding import HFImageEmbedder, PhantomEmbedder
from syncxr.images.judge import QUESTIONS, HeuristicJudge
from syncxr.phantom.renderer import render
from syncxr.phantom.scene import sample_scene


def _images(kind, n=40, seed=100):
    rng = np.random.default_rng(seed)
    return [
        render(
            sample_scene(
                rng,
                rng.choice(["edema", "nodule", "cardiomegaly"], size=1),
                view="LATERAL" if kind == "lateral" else "PA",
                low_quality=kind == "low_quality",
            ),
            128,
        )[0]
        for _ in range(n)
    ]


def test_judge_passes_good_phantom_images_and_fails_planted_defects():
    j = HeuristicJudge()
    good = j.judge(_images("good"))
    assert all(set(a) == set(QUESTIONS) and all(a.values()) for a in good)
    for kind, question in (("lateral", "frontal"), ("low_quality", None)):
        answers = j.judge(_images(kind))
        assert all(not all(a.values()) for a in answers), kind
        if question:
            assert all(not a[question] for a in answers)


def test_curator_rejects_by_judge_and_by_similarity_to_the_bad_bank():
    cur = Curator(HeuristicJudge(), PhantomEmbedder(), phantom_bad_images(), delta=0.5, drop_if_no="any")
    good = cur.check(_images("good"))
    assert sum(ok for ok, _ in good) >= 38
    assert all(not ok and r.startswith("judge:") for ok, r in cur.check(_images("low_quality")))
    # Without a judge, the embedding alone catches wrong views.
    emb_only = Curator(None, PhantomEmbedder(), phantom_bad_images(), delta=0.5, drop_if_no="any")
    assert all(r == "similar_to_bad" for _, r in emb_only.check(_images("lateral")))
    assert cur.max_similarity(_images("lateral", 5)).min() > 0.5
    with pytest.raises(ValueError, match="delta"):
        Curator(None, PhantomEmbedder(), [], delta=2.0, drop_if_no="any")


def test_bank_from_a_directory(tmp_path):
    from PIL import Image

    with pytest.raises(FileNotFoundError, match="no .png"):
        load_image_bank(tmp_path)
    Image.fromarray(_images("lateral", 1)[0]).save(tmp_path / "bad.png")
    assert load_image_bank(tmp_path)[0].shape == (128, 128)


def test_hf_embedder_with_a_tiny_dinov2(tiny_dino_path):
    e = HFImageEmbedder(tiny_dino_path, batch_size=2)
    emb = e.embed(_images("good", 3))
    assert emb.shape == (3, 32)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


class _ScriptedJudge:
    """Answers NO to the questions it is given for every image."""

    def __init__(self, no: tuple[str, ...]):
        self.no = no

    def judge(self, images):
        from syncxr.images.judge import QUESTIONS

        return [{q: q not in self.no for q in QUESTIONS} for _ in images]


def test_drop_rule_any_rejects_one_no_and_all_only_six():
    from syncxr.images.judge import QUESTIONS

    images = _images("good", 2)
    one_no, six_no = _ScriptedJudge(("frontal",)), _ScriptedJudge(tuple(QUESTIONS))
    assert [ok for ok, _ in Curator(one_no, PhantomEmbedder(), [], 0.5, drop_if_no="any").check(images)] == [False] * 2
    assert [ok for ok, _ in Curator(one_no, PhantomEmbedder(), [], 0.5, drop_if_no="all").check(images)] == [True] * 2
    verdicts = Curator(six_no, PhantomEmbedder(), [], 0.5, drop_if_no="all").check(images)
    assert all(not ok and r.startswith("judge:chest_xray") for ok, r in verdicts)
    with pytest.raises(ValueError, match="drop_if_no"):
        Curator(one_no, PhantomEmbedder(), [], 0.5, drop_if_no="most")
