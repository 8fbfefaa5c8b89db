import pytest

from syncxr.entities.transformers_ner import TransformersNER
from syncxr.entities.vocabulary import build_vocabulary
from syncxr.phantom.vocabulary import ENTITY_TYPES


def test_token_classification_backend_returns_typed_records(tiny_ner_path):
    ner = TransformersNER(tiny_ner_path, batch_size=2)
    out = ner.extract_batch(["Small pleural effusion in the right lower lobe.", "No pneumothorax."])
    assert len(out) == 2
    for ents in out:
        for e in ents:
            assert e["type"] in ENTITY_TYPES and e["name"] == e["name"].strip().lower() and e["name"]
    # The vocabulary stage runs on it like on the lexicon.
    v = build_vocabulary(["No pneumothorax.", "Cardiomegaly."], ner, progress=False)
    assert list(v.columns) == ["name", "type", "count"]


def test_labels_that_are_not_rate_types_are_rejected(tmp_path, tiny_text_path):
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification
    tok = AutoTokenizer.from_pretrained(tiny_text_path)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, num_labels=2, id2label={0: "O", 1: "B-PER"}, label2id={"O": 0, "B-PER": 1})
    BertForTokenClassification(cfg).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="PER"):
        TransformersNER(str(tmp_path), batch_size=2)
