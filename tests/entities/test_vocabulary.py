import pandas as pd
import pytest

from syncxr.entities.lexicon_ner import LexiconNER
from syncxr.entities.vocabulary import build_vocabulary, read_report_corpus
from syncxr.phantom.vocabulary import phantom_lexicon


def test_counts_documents_per_entity_and_type():
    texts = ["No effusion. Nodule in the lingula.", "Effusion at the right costophrenic angle. No effusion.", ""]
    v = build_vocabulary(texts, LexiconNER(phantom_lexicon()), progress=False)
    got = {(r.name, r.type): r.count for r in v.itertuples()}
    assert got == {("effusion", "NON-ABNORMALITY"): 2, ("nodule", "ABNORMALITY"): 1, ("lingula", "ANATOMY"): 1,
                   ("effusion", "ABNORMALITY"): 1, ("right costophrenic angle", "ANATOMY"): 1}


def test_report_corpus_files(tmp_path):
    pd.DataFrame({"report": ["No effusion.", None]}).to_csv(tmp_path / "r.csv", index=False)
    assert read_report_corpus(tmp_path / "r.csv", "report") == ["No effusion.", ""]
    with pytest.raises(ValueError, match="no column 'text'"):
        read_report_corpus(tmp_path / "r.csv", "text")
    with pytest.raises(FileNotFoundError, match="missing.parquet"):
        read_report_corpus(tmp_path / "missing.parquet", "report")
