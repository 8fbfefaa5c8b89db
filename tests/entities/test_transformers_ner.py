import pytest

from syncxr.entities.transformers_ner import TransformersNER
from syncxr.entities.vocabulary import build_vocabulary

# The session's NER is scripted (tests.tiny_models.NER_SCRIPT): "pleural" B-ABNORMALITY, "effusion"
# I-ABNORMALITY, "pneumo" + "##thorax" B-/I-ABNORMALITY, "right lower lobe" B-/I-/I-ANATOMY,
# "cardiomegaly" B-DISEASE, "edema" B-NON-DISEASE, every other piece O.
TEXTS = [
    "Small pleural effusion pneumothorax in the right lower lobe.",
    "Cardiomegaly and edema.",
    "Pneumothorax. There is a small pneumothorax in the lobe.",
]
SPANS = [
    # B- I- joined into one entity; the next B- (a word in two pieces) starts a second, adjacent one.
    [
        {"name": "pleural effusion", "type": "ABNORMALITY"},
        {"name": "pneumothorax", "type": "ABNORMALITY"},
        {"name": "right lower lobe", "type": "ANATOMY"},
    ],
    [{"name": "cardiomegaly", "type": "DISEASE"}, {"name": "edema", "type": "NON-DISEASE"}],
    # An entity named twice is listed once; an I- piece after O starts an entity of its own.
    [{"name": "pneumothorax", "type": "ABNORMALITY"}, {"name": "lobe", "type": "ANATOMY"}],
]


def test_spans_are_joined_from_bio_pieces_and_kept_apart(tiny_ner_path):
    ner = TransformersNER(tiny_ner_path, batch_size=2)  # two batches, the first one padded
    assert ner.extract_batch(TEXTS) == SPANS
    assert ner.extract(TEXTS[1]) == SPANS[1]
    assert ner.extract("No acute disease.") == []
    # The vocabulary stage runs on it like on the lexicon: documents mentioning each entity.
    v = build_vocabulary(TEXTS + ["Right lower lobe."], ner, progress=False)
    assert v.to_dict("records") == [
        {"name": "pneumothorax", "type": "ABNORMALITY", "count": 2},
        {"name": "pleural effusion", "type": "ABNORMALITY", "count": 1},
        {"name": "right lower lobe", "type": "ANATOMY", "count": 2},
        {"name": "lobe", "type": "ANATOMY", "count": 1},
        {"name": "cardiomegaly", "type": "DISEASE", "count": 1},
        {"name": "edema", "type": "NON-DISEASE", "count": 1},
    ]


def test_labels_that_are_not_rate_types_are_rejected(tmp_path, tiny_text_path):
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    tok = AutoTokenizer.from_pretrained(tiny_text_path)
    cfg = BertConfig(
        vocab_size=len(tok),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=2,
        id2label={0: "O", 1: "B-PER"},
        label2id={"O": 0, "B-PER": 1},
    )
    BertForTokenClassification(cfg).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="PER"):
        TransformersNER(str(tmp_path), batch_size=2)
