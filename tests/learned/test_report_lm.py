"""The learned report LMs (llm=phantom_lm_*): trained here on the phantom real corpus, saved in the
Hugging Face format and written with through TransformersLLM, the class real checkpoints use."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from syncxr.config import plain
from syncxr.entities.lexicon_ner import phantom_lexicon_ner
from syncxr.generation.addresses import addressed_config, generation_hash
from syncxr.generation.generation_job import generation_config
from syncxr.learned.chat_tokenizer import train_chat_tokenizer
from syncxr.learned.model_cache import built_record
from syncxr.learned.report_lm import (
    IGNORE,
    collate,
    encode,
    ensure_report_lm,
    pairs_tokenizer,
    phantom_report_lm,
    report_lm_spec,
)
from syncxr.learned.report_pairs import findings_requests, keeping_impression, report_pairs, swap_entities
from syncxr.phantom.corpus import PhantomCorpusSpec, corpus_reports
from syncxr.reports.loop import entity_key
from syncxr.reports.requests import ReportRequest
from syncxr.reports.transformers_llm import TransformersLLM
from tests.helpers import REAL_DIR_CORPUS, REPO, compose_config, compose_train

CORPUS = REAL_DIR_CORPUS  # conftest's `real_dir` corpus
TINY_LM = {
    "hidden_size": 32,
    "num_layers": 1,
    "num_heads": 2,
    "intermediate_size": 64,
    "steps": 60,
    "batch_size": 8,
    "lr": 0.005,
    "warmup_steps": 5,
}
SAMPLING = {"batch_size": 4, "max_new_tokens": 24, "temperature": 0.7, "top_p": 0.95, "dtype": "float32"}


def _rows(cache_dir, split: str):
    spec = PhantomCorpusSpec(**{k: v for k, v in CORPUS.items() if k != "builder"})
    return corpus_reports(spec, cache_dir, split)


@pytest.fixture(scope="module")
def pairs(cache_dir):
    return report_pairs(_rows(cache_dir, "train"), phantom_lexicon_ner())


@pytest.fixture(scope="module")
def tiny_lm_dir(cache_dir):
    return ensure_report_lm(cache_dir, CORPUS, TINY_LM, progress=False)


def test_pairs_ask_what_generation_asks(pairs):
    """Five pairs per report; each answer holds exactly the entities its request lists, the
    bridging impression request lists the FINDINGS' entities (generation asks both sections for the
    same set), a part of the FINDINGS asks for fewer entities, and its swapped twin for others."""
    ner = phantom_lexicon_ner()
    assert len(pairs) % 5 == 0 and {p.section for p in pairs} == {"findings", "impression"}
    for p in pairs:
        assert entity_key(ner.extract(p.answer)) == entity_key(p.entities), p
    fewer = swapped = 0
    for f, own, bridge, part, swap in zip(*(pairs[i::5] for i in range(5))):
        assert f.section == part.section == swap.section == "findings"
        assert own.section == bridge.section == "impression"
        assert entity_key(bridge.entities) == entity_key(f.entities)
        assert f"FINDINGS: {f.answer}" in own.messages[1]["content"]
        want = ReportRequest("x", "impression", bridge.entities, 0, findings=f.answer).messages()
        assert bridge.messages == want  # the very prompt real LLMs get
        assert entity_key(part.entities) <= entity_key(f.entities)
        fewer += len(part.entities) < len(f.entities)
        swapped += entity_key(swap.entities) != entity_key(part.entities)
    assert fewer > len(pairs) // 10 and swapped > len(pairs) // 10 * 0.9


def test_swapped_entities_keep_the_sentences_and_their_types():
    ner = phantom_lexicon_ner()
    names = {"ABNORMALITY": ["hazy infiltration"], "ANATOMY": ["left apex"], "NON-DISEASE": ["pleural air"]}
    text = "Small pleural effusion is seen in the right lung base. No pneumothorax."
    out = swap_entities(text, ner, names, np.random.default_rng(0))
    assert out == "Hazy infiltration is seen in the left apex. No pleural air."
    assert swap_entities(
        "No pneumothorax.", ner, {"NON-DISEASE": ["pneumothorax or effusion"]}, np.random.default_rng(0)
    ) == (
        "No pneumothorax."  # the NER would find another set: kept as written
    )


def test_a_keeping_impression_adds_the_negations_the_corpus_impression_leaves_out():
    ner = phantom_lexicon_ner()
    findings = "Small pleural effusion in the left costophrenic angle. No pneumothorax. The trachea is midline."
    text = keeping_impression(findings, "Small pleural effusion.", ner)
    assert text.startswith("Small pleural effusion.")
    assert "No pneumothorax." in text and "trachea" in text
    assert entity_key(ner.extract(text)) == entity_key(ner.extract(findings))


def test_the_tokenizer_is_the_same_in_another_process(pairs):
    texts = [p.answer for p in pairs[:300]] + [p.messages[1]["content"] for p in pairs[:300]]
    here = train_chat_tokenizer(texts, 400).get_vocab()
    code = (
        "import json, sys; from syncxr.learned.chat_tokenizer import train_chat_tokenizer; "
        "print(json.dumps(train_chat_tokenizer(json.loads(sys.stdin.read()), 400).get_vocab()))"
    )
    env = {"PYTHONPATH": f"{REPO / 'src'}:{REPO}", "PYTHONHASHSEED": "7", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(texts), capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(out.stdout) == here
    assert here == train_chat_tokenizer(texts, 400).get_vocab()


def test_the_tokenizer_decodes_every_report_as_written_and_templates_the_chat(pairs):
    tok = pairs_tokenizer(pairs, 2000)
    for p in pairs:
        assert tok.decode(tok(p.answer, add_special_tokens=False)["input_ids"]) == p.answer  # "ill-defined"
    prompt = tok.apply_chat_template(pairs[0].messages, tokenize=False, add_generation_prompt=True)
    assert prompt.startswith("<s><|system|> You are") and prompt.endswith("</s> <|assistant|>")
    assert tok.unk_token_id not in tok(prompt, add_special_tokens=False)["input_ids"]


def test_the_loss_is_on_the_answer_only(pairs):
    tok = pairs_tokenizer(pairs, 2000)
    (ids, n_prompt), other = encode(tok, pairs[:2])
    batch = collate([(ids, n_prompt), other], tok.pad_token_id)
    labels = batch["labels"][0]
    assert (labels[:n_prompt] == IGNORE).all() and labels[len(ids) - 1] == tok.eos_token_id
    assert tok.decode(labels[n_prompt : len(ids)].tolist(), skip_special_tokens=True) == pairs[0].answer


def test_training_lowers_the_held_out_loss_and_records_it(tiny_lm_dir):
    rec = built_record(tiny_lm_dir)
    assert rec["held_out_loss"] < 0.7 * rec["held_out_loss_at_init"], rec  # 3.5 against 6.1
    assert rec["build_seconds"] > 0 and rec["train_pairs"] > 5 * rec["val_pairs"] > 0
    assert rec["spec"]["lm"]["hidden_size"] == 32


def test_the_build_leaves_the_callers_random_stream_alone(cache_dir):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    ensure_report_lm(cache_dir, CORPUS, {**TINY_LM, "steps": 2}, progress=False)
    assert torch.equal(torch.rand(3), expected)


def test_the_preset_target_loads_the_cached_lm_through_transformers_llm(cache_dir, tiny_lm_dir):
    llm = phantom_report_lm(str(cache_dir), CORPUS, TINY_LM, progress=False, **SAMPLING)
    assert isinstance(llm, TransformersLLM)
    reqs = findings_requests(_rows(cache_dir, "val")[:5], phantom_lexicon_ner(), seed=1)
    texts = llm.generate(reqs)
    assert len(texts) == 5 and all(isinstance(t, str) for t in texts)
    assert any(t.strip() for t in texts)  # a trained model writes words, not only its stop token


def test_a_bad_lm_setting_is_refused_by_name(cache_dir):
    with pytest.raises(ValueError, match="llm.lm: .*'layers'"):
        report_lm_spec({**TINY_LM, "layers": 2})
    with pytest.raises(ValueError, match="multiple of num_heads"):
        report_lm_spec({**TINY_LM, "hidden_size": 33})
    with pytest.raises(ValueError, match="kind=.*syn"):
        ensure_report_lm(cache_dir, {**CORPUS, "kind": "syn"}, TINY_LM)


@pytest.mark.parametrize("preset", ["phantom_lm_small", "phantom_lm_large"])
def test_the_presets_compose_and_leave_cache_dir_out_of_the_dataset_address(preset):
    cfg = compose_train([f"llm={preset}"])
    gen = generation_config(cfg.generation)
    assert gen["llm"]["cache_dir"] and gen["llm"]["corpus"] == plain(cfg.real_corpus)  # what data=real trains on
    assert gen["llm"]["corpus"]["kind"] == "real" and gen["llm"]["phantom_world"] is True
    assert "cache_dir" not in json.dumps(addressed_config(gen))
    moved = generation_config(compose_train([f"llm={preset}", "paths.cache_dir=/elsewhere"]).generation)
    assert generation_hash(moved) == generation_hash(gen)
    bigger = generation_config(compose_train([f"llm={preset}", "llm.lm.steps=7"]).generation)
    assert generation_hash(bigger) != generation_hash(gen)  # another model, other data
    generate = compose_config("generate", [f"llm={preset}"])
    assert {"cache_dir", "corpus"} <= set(generate.llm) and generate.llm.corpus.kind == "real"
