import pytest
import torch

from syncxr.entities.lexicon_ner import LexiconNER
from syncxr.phantom.vocabulary import phantom_lexicon
from syncxr.reports.loop import write_reports
from syncxr.reports.requests import ReportRequest
from syncxr.reports.row_sampling import PerRowGumbelSampler
from syncxr.reports.transformers_llm import TransformersLLM, model_dtype
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


def test_a_texts_seed_not_its_batch_fixes_it(gibberish_path):
    # Issue 22: the whole batch was seeded with its first request's seed, so a text depended on its
    # neighbours. Prompts of two lengths: batches of 8 pad rows that a batch of 1 does not.
    reqs = _requests(range(100, 124))
    alone = _llm(gibberish_path, batch_size=1, max_new_tokens=16).generate(reqs)
    batched = _llm(gibberish_path, batch_size=8, max_new_tokens=16)
    assert batched.generate(reqs) == alone  # 24 x 16 tokens: measured 0 of 200 texts differ (see below)
    assert batched.generate(reqs[::-1]) == alone[::-1]  # other neighbours, other padding
    assert len(set(alone)) == len(alone)  # every seed its own text
    other = batched.generate(_requests(range(200, 224)))
    assert all(a != b for a, b in zip(alone, other))  # the same prompt with another seed: another text


def test_per_row_sampling_draws_from_the_tempered_nucleus():
    # Gumbel-max over the filtered logits is an exact sample of softmax(logits / T) within top-p.
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    n, temperature = 4000, 1.0
    counts = torch.zeros(4)
    for seed in range(n):
        scores = PerRowGumbelSampler([(seed,)], temperature, 0.9, prompt_len=3)(
            torch.zeros(1, 5, dtype=torch.long), logits
        )
        counts[scores.argmax()] += 1
    assert counts[3] == 0  # outside the 0.9 nucleus (0.5 + 0.3 + 0.15 = 0.95 >= 0.9)
    assert torch.allclose(counts[:3] / n, torch.tensor([0.5, 0.3, 0.15]) / 0.95, atol=0.025), counts / n
    step2 = PerRowGumbelSampler([(1,), (1,)], temperature, 1.0, prompt_len=2)(
        torch.zeros(2, 5, dtype=torch.long), logits.repeat(2, 1)
    )
    assert torch.equal(step2[0], step2[1])  # a seed's noise at a step is the same in any row
    step3 = PerRowGumbelSampler([(1,)], temperature, 1.0, prompt_len=2)(torch.zeros(1, 6, dtype=torch.long), logits)
    assert not torch.equal(step2[0], step3[0])  # and another at the next step


def test_half_precision_is_refused_on_the_cpu(tiny_llm_path):
    assert model_dtype("auto", "cpu") == torch.float32 and model_dtype("float32", "cpu") == torch.float32
    for dtype in ("float16", "bfloat16"):
        with pytest.raises(ValueError, match=f"llm.dtype={dtype} needs a CUDA device.*'cpu'"):
            _llm(tiny_llm_path, dtype=dtype, device="cpu")
    with pytest.raises(ValueError, match="llm.dtype must be"):
        model_dtype("float8", "cpu")


def test_half_precision_is_taken_on_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **kw: True)
    assert model_dtype("bfloat16", "cuda") == torch.bfloat16 and model_dtype("float16", "cuda:1") == torch.float16
    assert model_dtype("auto", "cuda") == "auto"  # the checkpoint's own dtype
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **kw: False)
    with pytest.raises(ValueError, match="does not support bfloat16; use float16"):
        model_dtype("bfloat16", "cuda")


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
        "findings_first_answers": 2,
        "findings_first_passed": 1,  # x's first answer holds its entity; y's does not
        "findings_unasked_entities": 2,  # cardiomegaly, written in each of y's two rejected answers
        "impression_first_answers": 1,
        "impression_first_passed": 1,
    }
    assert [(r["id"], r["attempt"], r["text"], r["extracted"]) for r in res.rejects] == [
        ("y", a, ANSWER, [{"name": "cardiomegaly", "type": "DISEASE"}]) for a in (0, 1)
    ]
