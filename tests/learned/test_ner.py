"""The learned phantom NER: trained on the writer's exact spans, loaded by TransformersNER, scored on
held-out reports through the pipeline generation uses."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from syncxr.config import plain
from syncxr.entities.transformers_ner import TransformersNER
from syncxr.generation.addresses import addressed_config
from syncxr.generation.generation_job import generation_config
from syncxr.learned.model_cache import built_record
from syncxr.learned.ner import (
    LABELS,
    NERSpec,
    ner_tokenizer,
    phantom_ner,
    shuffled_report,
    token_labels,
    training_texts,
    writer_sections,
)
from syncxr.phantom.corpus import PhantomCorpusSpec, corpus_reports
from syncxr.phantom.vocabulary import ENTITY_TYPES
from tests.helpers import REAL_DIR_CORPUS, compose_config

CORPUS = REAL_DIR_CORPUS  # conftest's `real_dir` corpus
TINY = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64, "batch_size": 16}


@pytest.fixture(scope="module")
def trained(cache_dir):
    before = torch.get_rng_state()
    ner = phantom_ner(str(cache_dir), CORPUS, {**TINY, "epochs": 12, "lr": 3e-3}, batch_size=8, progress=False)
    assert torch.equal(torch.get_rng_state(), before)  # training never moves the caller's random stream
    return ner


def test_spans_are_rebuilt_for_every_row_unpaired_ones_included(cache_dir):
    rows = corpus_reports(PhantomCorpusSpec(**{k: v for k, v in CORPUS.items() if k != "builder"}), cache_dir)
    assert (rows["defect"] == "unpaired").any()  # their report was written of another row's scene
    sections = writer_sections(CORPUS, cache_dir, "train")
    assert len(sections) == 2 * len(rows)
    for (findings, f_spans), (impression, i_spans), ents in zip(sections[::2], sections[1::2], rows["entities"]):
        placed = {
            (t[a:b].lower(), ty) for t, spans in ((findings, f_spans), (impression, i_spans)) for a, b, ty in spans
        }
        assert placed == {(e["name"], e["type"]) for e in ents}


def test_bio_labels_follow_the_spans_and_no_piece_crosses_an_entity_edge():
    text = "There are small pleural effusions at both costophrenic angles. Ill-defined opacity."
    names = (
        ("small pleural effusion", "ABNORMALITY"),
        ("costophrenic angles", "ANATOMY"),
        ("Ill-defined opacity", "ABNORMALITY"),
    )
    spans = [(text.index(n), text.index(n) + len(n), t) for n, t in names]
    tok = ner_tokenizer([(text, spans)], 500)
    enc = tok(text, return_offsets_mapping=True)
    labels, crossing = token_labels(enc["offset_mapping"], spans)
    tagged = [(p, LABELS[i]) for p, i in zip(tok.convert_ids_to_tokens(enc["input_ids"]), labels) if i >= 0]
    assert crossing == 0
    assert tagged[2:6] == [
        ("small", "B-ABNORMALITY"),
        ("pleural", "I-ABNORMALITY"),
        ("effusion", "I-ABNORMALITY"),
        ("##s", "O"),  # the plural ending is no part of the name (as the lexicon NER reads it)
    ]
    assert ("ill-defined", "B-ABNORMALITY") in tagged and ("opacity", "I-ABNORMALITY") in tagged
    # a word never seen (an LLM's) is one [UNK], not letters the model could tag one by one
    assert tok.tokenize("Effusion involving both angles.") == ["effusion", "[UNK]", "both", "angles", "."]


def test_shuffled_reports_keep_every_span_on_its_name(cache_dir):
    sections = writer_sections(CORPUS, cache_dir, "val")
    texts = training_texts(sections, seed=0)
    assert texts[: len(sections)] == sections and len(texts) == len(sections) * 3 // 2
    moved = 0
    for (f, fs), (i, is_), (t, ts) in zip(sections[::2], sections[1::2], texts[len(sections) :]):
        assert len(t) == len(f) + len(i) + 1
        assert sorted(t[a:b] + ty for a, b, ty in ts) == sorted(
            [f[a:b] + ty for a, b, ty in fs] + [i[a:b] + ty for a, b, ty in is_]
        )
        moved += t != f"{f} {i}"
    assert moved > len(sections) // 4  # the sentence order does change
    text, spans = shuffled_report(("A b. C d.", [(0, 1, "ANATOMY")]), ("E.", []), np.random.default_rng(1))
    assert sorted(text.split(" ")) == ["A", "C", "E.", "b.", "d."] and [text[a:b] for a, b, _ in spans] == ["A"]


def test_training_beats_an_untrained_model_on_held_out_reports(cache_dir, trained):
    untrained = phantom_ner(str(cache_dir), CORPUS, {**TINY, "epochs": 0}, batch_size=8, progress=False)
    q, q0 = trained.quality, untrained.quality
    assert q["n_val"] == q0["n_val"] > 0 and q["n_val_spans"] > 0
    assert q["span_f1"] > 0.5 > q0["span_f1"] + 0.3, (q, q0)
    assert q["writer_agreement"] > q0["writer_agreement"]
    for key in ("lexicon_agreement", "report_lexicon_agreement", "template_llm_pass_rate"):
        assert 0 <= q0[key] <= q[key] <= 1, key
    assert q["template_llm_pass_rate"] > 0  # some entity sets the template LLM writes pass the check


def test_loads_through_transformers_ner_with_its_build_record(trained):
    assert type(trained) is TransformersNER
    path = trained.pipe.model.name_or_path
    record = built_record(__import__("pathlib").Path(path))
    assert trained.quality == record["quality"] and record["seconds"] > 0 and record["crossing_tokens"] == 0
    assert len(record["losses"]) == 12 and record["losses"][-1] < record["losses"][0]
    again = TransformersNER(path, batch_size=4)  # the cached directory is an ordinary checkpoint
    assert {t.split("-", 1)[-1] for t in again.pipe.model.config.id2label.values()} - {"O"} == set(ENTITY_TYPES)
    got = again.extract("Pleural effusion in the right lower lobe. No pneumothorax.")
    assert all(set(e) == {"name", "type"} and e["type"] in ENTITY_TYPES for e in got)


def test_bad_spec_and_corpus_are_refused_by_name(cache_dir):
    with pytest.raises(ValueError, match="ner.spec: unknown key.*'layers'"):
        phantom_ner(str(cache_dir), CORPUS, {"layers": 2}, batch_size=8)
    with pytest.raises(ValueError, match="phantom real corpus"):
        phantom_ner(str(cache_dir), {**CORPUS, "kind": "syn"}, TINY, batch_size=8)
    assert NERSpec.from_dict({}) == NERSpec()


def test_preset_composes_with_the_real_corpus_and_cache():
    cfg = compose_config("generate", ["ner=phantom_ner"])
    ner = plain(cfg.generation.ner)
    assert ner["_target_"] == "syncxr.learned.ner.phantom_ner" and ner["phantom_world"] is True
    assert ner["corpus"] == plain(cfg.real_corpus) and ner["cache_dir"] == cfg.paths.cache_dir
    assert NERSpec.from_dict(ner["spec"])  # every key a field
    address = addressed_config(generation_config(cfg.generation))
    assert "cache_dir" not in address["ner"] and "batch_size" not in address["ner"]
    assert address["ner"]["spec"] == ner["spec"] and json.dumps(address)  # what the model is: addressed
