from pathlib import Path

import pandas as pd
import pytest
import yaml

from syncxr.benchmarks.chestxray14 import ChestXray14
from syncxr.benchmarks.chexpert import CHEXPERT5, CHEXPERT_LABELS, CheXpert, read_chexpert_split
from syncxr.benchmarks.padchest import PADCHEST_OF, PadChest
from syncxr.benchmarks.rsna import RSNA, read_rsna
from syncxr.benchmarks.siim import SIIM, read_siim
from syncxr.entities.lexicon_ner import LexiconNER
from syncxr.phantom.benchmarks import TwinSpec, background_findings, ensure_twin, render_twin_image, split_labels
from syncxr.phantom.frequencies import ANCHOR_PREVALENCE, real_prevalence, tail_findings
from syncxr.phantom.vocabulary import phantom_lexicon, term_index

REPO = Path(__file__).resolve().parents[2]


def test_chexpert_twin_has_the_published_layout(cache_dir):
    root = CheXpert(twin=dict(n_test=40, n_valid=20, image_size=48)).root_dir(cache_dir, progress=False)
    for split, n in (("valid", 20), ("test", 40)):
        df = pd.read_csv(root / f"{split}.csv")
        assert list(df.columns) == ["Path", *CHEXPERT_LABELS]
        assert len(df) == n
        assert all((root / p).is_file() for p in df["Path"])
        assert df["Path"].str.match(rf"{split}/patient\d{{5}}/study1/view1_frontal\.png").all()
    test = pd.read_csv(root / "test.csv")
    assert (test[list(CHEXPERT5)].sum() == round(0.3 * 40)).all()  # exact subject counts
    assert not (root / "train.csv").exists()


def test_adding_a_train_split_keeps_valid_and_test(cache_dir):
    spec = TwinSpec("chexpert", n_test=30, n_valid=10, image_size=48)
    with_train = TwinSpec("chexpert", n_test=30, n_valid=10, image_size=48, n_train=10)
    assert with_train.hash != spec.hash
    root = ensure_twin(with_train, CheXpert(), cache_dir, progress=False)
    assert len(read_chexpert_split(root, "train.csv", list(CHEXPERT5))) == 10
    old = ensure_twin(spec, CheXpert(), cache_dir, progress=False)
    assert (old / "test.csv").read_text() == (root / "test.csv").read_text()


def test_twin_is_cached_and_counts_are_exact(cache_dir):
    spec = TwinSpec("siim", n_train=0, n_valid=0, n_test=20, image_size=48, prevalence=0.3)
    root = ensure_twin(spec, SIIM(), cache_dir, progress=False)
    stamp = (root / "benchmark.json").stat().st_mtime_ns
    assert ensure_twin(spec, SIIM(), cache_dir, progress=False) == root
    assert (root / "benchmark.json").stat().st_mtime_ns == stamp  # not rebuilt
    s = read_siim(root, "test.csv")
    assert s.labels.sum() == 6  # round(0.3 * 20), exactly
    assert not (root / "train.csv").exists()
    with pytest.raises(ValueError, match="benchmark.siim.twin: .*unexpected keyword argument 'size'"):
        SIIM(twin={"size": 3}).twin_spec()
    with pytest.raises(ValueError, match="background"):
        TwinSpec("siim", background=-1)


def test_rsna_twin_boxes_enclose_the_rendered_pneumonia(cache_dir):
    spec = TwinSpec("rsna", n_train=0, n_valid=0, n_test=16, image_size=64)
    root = ensure_twin(spec, RSNA(), cache_dir, progress=False)
    s = read_rsna(root, "test.csv", ["pneumonia"])
    labels = split_labels(spec, RSNA(), 1, 16)
    assert s.labels.sum() > 0
    for i in range(16):
        image, masks = render_twin_image(spec, 1, i, labels[i])
        assert s.labels[i, 0] == ("pneumonia" in labels[i])
        assert not labels[i] & {"consolidation", "infiltration"}  # no unlabelled opacity in RSNA
        assert (s.load(i)[0].numpy() == image).all()  # the DICOM holds the rendered pixels
        if s.labels[i, 0]:
            box = s.mask(i, image.shape)
            m = masks["pneumonia"]
            assert (box | ~m).all()  # every pneumonia pixel is inside a box
            assert box.sum() <= 3 * m.sum() + 16  # and the boxes are tight


def test_twins_draw_subject_rare_and_real_background_exactly():
    n = 600
    spec = TwinSpec("chestxray14", n_test=n, prevalence=0.12, prevalence_rare=0.1, background=1.0)
    labels = split_labels(spec, ChestXray14(), 1, n)
    count = lambda k: sum(k in s for s in labels)  # noqa: E731
    real = real_prevalence()
    assert all(count(k) == round(0.12 * n) for k in ChestXray14.subject)
    assert all(count(k) == round(0.1 * n) for k in ChestXray14.rare)
    assert all(count(k) == round(real[k] * n) for k in background_findings(ChestXray14()))
    assert count("central_venous_catheter") > count("pneumoperitoneum")  # the backdrop is long-tailed too


def _conf(name):
    return yaml.safe_load((REPO / "conf" / "benchmark" / f"{name}.yaml").read_text())[name]


@pytest.mark.parametrize("bench", [ChestXray14(), PadChest()], ids=lambda b: b.name)
def test_class_sets_in_the_configs_follow_the_real_frequencies(bench):
    conf = _conf(bench.name)
    assert conf["class_sets"] == bench.twin_class_sets()
    tail = set(tail_findings())
    head = max(ANCHOR_PREVALENCE.values())
    assert tail == {k for k, v in ANCHOR_PREVALENCE.items() if v < 0.1 * head} and 10 <= len(tail) < 20
    # rare = the tail: every rare class is rarer in the real corpus than every other class of the twin
    assert set(bench.rare) <= tail and not set(bench.subject) & tail
    assert max(ANCHOR_PREVALENCE[k] for k in bench.rare) < min(ANCHOR_PREVALENCE[k] for k in bench.subject)
    assert len(conf["class_sets"]["rare"]) == len(bench.rare) >= 3


def test_padchest_seen_names_are_report_words_and_unseen_ones_are_not():
    ner, terms, sets = LexiconNER(phantom_lexicon()), term_index(), PadChest().twin_class_sets()
    for k in PadChest.subject:
        seen = PADCHEST_OF[k][0]
        assert [terms[e["name"]][0] for e in ner.extract(seen)] == [k], seen  # reports use the name
    lexicon = phantom_lexicon()
    for name in sets["unseen"]:
        assert name not in lexicon and name.removesuffix("s") not in lexicon, name  # reports never use it
