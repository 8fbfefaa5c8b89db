import pandas as pd
import pytest

from syncxr.entities.lexicon_ner import LexiconNER
from syncxr.entities.vocabulary import build_vocabulary, read_report_corpus
from syncxr.phantom.vocabulary import ENTITY_TYPES, FINDINGS, phantom_lexicon, term_index


def test_counts_documents_per_entity_and_type():
    texts = ["No effusion. Nodule in the lingula.", "Effusion at the right costophrenic angle. No effusion.", ""]
    v = build_vocabulary(texts, LexiconNER(phantom_lexicon()), progress=False)
    got = {(r.name, r.type): r.count for r in v.itertuples()}
    assert got == {
        ("effusion", "NON-ABNORMALITY"): 2,
        ("nodule", "ABNORMALITY"): 1,
        ("lingula", "ANATOMY"): 1,
        ("effusion", "ABNORMALITY"): 1,
        ("right costophrenic angle", "ANATOMY"): 1,
    }


def test_report_corpus_files(tmp_path):
    pd.DataFrame({"report": ["No effusion.", None]}).to_csv(tmp_path / "r.csv", index=False)
    assert read_report_corpus(tmp_path / "r.csv", "report") == ["No effusion.", ""]
    with pytest.raises(ValueError, match="no column 'text'"):
        read_report_corpus(tmp_path / "r.csv", "text")
    with pytest.raises(FileNotFoundError, match="missing.parquet"):
        read_report_corpus(tmp_path / "missing.parquet", "report")


def test_phantom_reports_have_a_vocabulary_with_room_for_a_long_tail():
    """The report writer over a real-shaped corpus: >= 500 entities of all five types, and the
    lexicon names each finding's every form exactly once."""
    import numpy as np

    from syncxr.phantom.frequencies import NIH_FINDINGS_PER_IMAGE, draw_profile_labels, real_prevalence
    from syncxr.phantom.report_writer import write_report
    from syncxr.phantom.scene import sample_scene

    rng = np.random.default_rng(0)
    texts = []
    for keys in draw_profile_labels(3000, real_prevalence(), NIH_FINDINGS_PER_IMAGE, rng):
        r = write_report(sample_scene(rng, keys), rng)
        texts.append(f"{r.findings} {r.impression}")
    v = build_vocabulary(texts, LexiconNER(phantom_lexicon()), progress=False)
    assert len(v) >= 500 and set(v["type"]) == set(ENTITY_TYPES)
    counts = v["count"].to_numpy()
    assert counts.max() > 100 * counts.min()  # head and tail
    index = term_index()  # raises if a form named two findings
    assert {index[s][0] for t in FINDINGS.values() for s in t.synonyms} == set(FINDINGS)
