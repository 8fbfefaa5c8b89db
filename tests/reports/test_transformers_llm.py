import pytest

from syncxr.entities.lexicon_ner import LexiconNER
from syncxr.phantom.vocabulary import phantom_lexicon
from syncxr.reports.loop import write_reports
from syncxr.reports.requests import ReportRequest
from syncxr.reports.transformers_llm import TransformersLLM
from tests.tiny_models import LLM_SCRIPT, tiny_llm

ANSWER = LLM_SCRIPT.replace("|", "")  # what the session's scripted LLM writes after any prompt


def _llm(path, **kw) -> TransformersLLM:
    return TransformersLLM(
        path, **{"batch_size": 2, "max_new_tokens": 8, "temperature": 0.7, "top_p": 0.95, "dtype": "auto", **kw}
    )


def _requests(seeds, entities=({"name": "nodule", "type": "ABNORMALITY"},)):
    # Prompts of different lengths in one batch: left padding must keep every row's last token last.
    return [ReportRequest(str(i), "findings", list(entities) * (1 + i % 2), seed=s) for i, s in enumerate(seeds)]


@pytest.fixture(scope="module")
def gibberish_path(tmp_path_factory) -> str:
    return str(tiny_llm(tmp_path_factory.mktemp("tiny_llm_random")))


def test_batched_chat_generation_writes_the_models_text(tiny_llm_path):
    llm = _llm(tiny_llm_path)
    assert llm.tokenizer.padding_side == "left"
    assert llm.generate(_requests([0, 1, 2])) == [ANSWER] * 3  # two batches, the first padded
    assert _llm(tiny_llm_path, temperature=0.0).generate(_requests([5])) == [ANSWER]  # greedy
    assert llm.counters() == {"llm_calls": 3}


def test_the_seed_fixes_the_sampled_text(gibberish_path):
    llm = _llm(gibberish_path, batch_size=1)
    first = llm.generate(_requests([1, 2]))
    assert all(isinstance(t, str) and t for t in first)
    assert llm.generate(_requests([1, 2])) == first  # the same seeds sample the same texts
    assert llm.generate(_requests([7, 8])) != first  # a retry (new seed) samples new ones


def test_report_loop_keeps_what_the_ner_confirms_and_rejects_the_rest(tiny_llm_path):
    llm = _llm(tiny_llm_path, batch_size=4)
    samples = {"x": [{"name": "cardiomegaly", "type": "DISEASE"}], "y": [{"name": "edema", "type": "NON-DISEASE"}]}
    res = write_reports(llm, LexiconNER(phantom_lexicon()), samples, {"x": 1, "y": 2}, max_attempts=2)
    assert res.findings == {"x": ANSWER} and res.impressions == {"x": ANSWER}
    assert res.attempts == {"x": 2, "y": 2}  # x: findings + impression at once; y: two findings tries
    assert {k: v for k, v in res.counters.items() if v} == {
        "findings_calls": 3,
        "findings_rejected": 2,
        "findings_gave_up": 1,
        "impression_calls": 1,
    }
    assert [(r["id"], r["attempt"], r["text"], r["extracted"]) for r in res.rejects] == [
        ("y", a, ANSWER, [{"name": "cardiomegaly", "type": "DISEASE"}]) for a in (0, 1)
    ]
