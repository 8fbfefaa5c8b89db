import numpy as np

from syncxr.entities.lexicon_ner import LexiconNER
from syncxr.phantom.report_writer import write_report
from syncxr.phantom.scene import sample_scene
from syncxr.phantom.vocabulary import FINDINGS, phantom_lexicon

NER = LexiconNER(phantom_lexicon())


def test_agrees_with_the_phantom_report_writer():
    """Exact agreement over many reports, every finding and phrasing included (each finding in about
    a hundred reports, with up to five findings per report)."""
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(2000):
        keys = list(rng.choice(list(FINDINGS), size=int(rng.integers(0, 6)), replace=False))
        r = write_report(sample_scene(rng, keys), rng, negation_rate=float(rng.uniform(0, 1)))
        got = NER.extract(f"{r.findings} {r.impression}")
        assert sorted(map(str, got)) == sorted(map(str, r.entities)), (r.findings, r.impression)
        seen.update(keys)
    assert seen == set(FINDINGS)


def test_longest_match_negation_scope_and_plurals():
    got = NER.extract(
        "Bilateral pleural effusions. No pneumothorax or airspace opacity. Nodule in the left upper lobe."
    )
    assert got == [
        {"name": "pleural effusion", "type": "ABNORMALITY"},
        {"name": "pneumothorax", "type": "NON-DISEASE"},
        {"name": "airspace opacity", "type": "NON-ABNORMALITY"},
        {"name": "nodule", "type": "ABNORMALITY"},
        {"name": "left upper lobe", "type": "ANATOMY"},
    ]
    assert NER.extract("") == [] and NER.extract("Unremarkable study.") == []
