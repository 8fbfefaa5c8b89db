from syncxr.entities.lexicon_ner import LexiconNER
from syncxr.phantom.vocabulary import phantom_lexicon
from syncxr.reports.loop import write_reports
from syncxr.reports.requests import ReportRequest
from syncxr.reports.transformers_llm import TransformersLLM


def test_batched_chat_generation_with_a_tiny_model(tiny_llm_path):
    llm = TransformersLLM(tiny_llm_path, batch_size=2, max_new_tokens=8, temperature=0.7, top_p=0.95, dtype="auto")
    reqs = [ReportRequest(str(i), "findings", [{"name": "nodule", "type": "ABNORMALITY"}], seed=i) for i in range(3)]
    out = llm.generate(reqs)
    assert len(out) == 3 and all(isinstance(t, str) for t in out)
    assert llm.tokenizer.padding_side == "left"
    assert llm.counters() == {"llm_calls": 3}


def test_random_model_output_is_rejected_and_counted_not_crashing(tiny_llm_path):
    llm = TransformersLLM(tiny_llm_path, batch_size=4, max_new_tokens=6, temperature=0.7, top_p=0.95, dtype="auto")
    samples = {"x": [{"name": "cardiomegaly", "type": "DISEASE"}], "y": [{"name": "edema", "type": "NON-DISEASE"}]}
    res = write_reports(llm, LexiconNER(phantom_lexicon()), samples, {"x": 1, "y": 2}, max_attempts=2)
    assert res.counters["findings_gave_up"] + len(res.findings) == 2
    assert len(res.rejects) == res.counters["findings_rejected"] + res.counters["impression_rejected"]
