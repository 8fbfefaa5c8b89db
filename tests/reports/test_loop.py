from collections import Counter

import pytest

from syncxr.entities.lexicon_ner import LexiconNER
from syncxr.phantom.vocabulary import phantom_lexicon
from syncxr.reports.loop import entity_key, write_reports
from syncxr.reports.requests import ReportRequest, clean_section
from syncxr.reports.template_llm import TemplateLLM

NER = LexiconNER(phantom_lexicon())
SAMPLES = {
    "a": [
        {"name": "pleural effusion", "type": "ABNORMALITY"},
        {"name": "pneumothorax", "type": "NON-DISEASE"},
        {"name": "right lower lobe", "type": "ANATOMY"},
    ],
    "b": [
        {"name": "cardiomegaly", "type": "DISEASE"},
        {"name": "nodule", "type": "NON-ABNORMALITY"},
        {"name": "edema", "type": "NON-DISEASE"},
        {"name": "hila", "type": "ANATOMY"},
    ],
}
SEEDS = {"a": 1, "b": 2}


def test_accepted_sections_extract_exactly_the_sampled_entities():
    res = write_reports(TemplateLLM(error_rate=0.0), NER, SAMPLES, SEEDS)
    for sid, ents in SAMPLES.items():
        assert entity_key(NER.extract(res.findings[sid])) == entity_key(ents)
        assert entity_key(NER.extract(res.impressions[sid])) == entity_key(ents)
    assert res.counters["findings_rejected"] == 0 and not res.rejects


def test_omissions_are_rejected_regenerated_and_kept():
    samples = {f"{sid}{i}": ents for i in range(10) for sid, ents in SAMPLES.items()}
    seeds = {sid: i for i, sid in enumerate(samples)}
    res = write_reports(TemplateLLM(error_rate=0.5), NER, samples, seeds, max_attempts=20)
    assert set(res.findings) == set(res.impressions) == set(samples)
    n_rej = res.counters["findings_rejected"] + res.counters["impression_rejected"]
    assert n_rej == len(res.rejects) > 0
    assert all(r["reason"] == "entities differ" and r["text"] for r in res.rejects)
    assert sum(res.attempts.values()) == res.counters["findings_calls"] + res.counters["impression_calls"]


class Broken:
    name = "broken"

    def generate(self, requests):
        return [None if i % 2 else "   " for i, _ in enumerate(requests)]


def test_an_llm_that_never_answers_gives_up_without_crashing():
    res = write_reports(Broken(), NER, SAMPLES, SEEDS, max_attempts=3)
    assert res.findings == {} and res.impressions == {}
    assert res.counters["findings_gave_up"] == 2
    assert res.counters["findings_failed_calls"] == 6
    with pytest.raises(ValueError, match="max_attempts"):
        write_reports(Broken(), NER, SAMPLES, SEEDS, max_attempts=0)


def test_prompts_list_entities_by_type_and_answers_are_cleaned():
    msgs = ReportRequest("a", "findings", SAMPLES["a"], seed=0).messages()
    user = msgs[1]["content"]
    assert "pleural effusion" in user and "explicitly absent" in user and "right lower lobe" in user
    imp = ReportRequest("a", "impression", SAMPLES["a"], seed=0, findings="X.").messages()[1]["content"]
    assert imp.startswith("FINDINGS: X.")
    assert clean_section("IMPRESSION: No effusion.", "impression") == "No effusion."
    assert clean_section("  ", "findings") is None and clean_section(None, "findings") is None


class DownFor(TemplateLLM):
    """The template LLM behind a server that fails every request of the samples in `down`."""

    def __init__(self, down, section="findings"):
        super().__init__(error_rate=0.5)
        self.down, self.section = set(down), section

    def generate(self, requests):
        from syncxr.reports.backend_failure import BackendFailure  # noqa: PLC0415

        return [
            BackendFailure("timeouts") if r.sample_id in self.down and r.section == self.section else t
            for r, t in zip(requests, super().generate(requests))
        ]


@pytest.mark.parametrize("section", ["findings", "impression"])
def test_a_sample_the_backend_failed_on_is_retryable_not_dropped(section):
    samples = {f"{sid}{i}": ents for i in range(4) for sid, ents in SAMPLES.items()}
    seeds = {sid: i for i, sid in enumerate(samples)}
    res = write_reports(DownFor({"a1", "b2"}, section), NER, samples, seeds, max_attempts=20)
    assert res.retryable == {"a1": "llm:timeouts", "b2": "llm:timeouts"}
    assert set(res.findings) == set(res.impressions) == set(samples) - {"a1", "b2"}
    # What the others got, and what is counted, is what a run without those two samples gives.
    rest = {sid: e for sid, e in samples.items() if sid not in res.retryable}
    alone = write_reports(TemplateLLM(error_rate=0.5), NER, rest, seeds, max_attempts=20)
    assert res.findings == alone.findings and res.counters == alone.counters and res.rejects == alone.rejects
    assert not any(r["id"] in res.retryable for r in res.rejects) and set(res.attempts) == set(rest)


class Scripted:
    """An LLM answering each (sample, section) from a script: the i-th call gets the i-th answer."""

    name = "scripted"

    def __init__(self, script):
        self.script, self.calls = script, Counter()

    def generate(self, requests):
        out = []
        for r in requests:
            key = (r.sample_id, r.section)
            out.append(self.script[key][self.calls[key]])
            self.calls[key] += 1
        return out


def test_first_attempt_passes_and_unasked_entities_are_counted():
    script = {
        # right at once
        ("a", "findings"): ["Pleural effusion in the right lower lobe. No pneumothorax."],
        ("a", "impression"): ["Pleural effusion in the right lower lobe. No pneumothorax."],
        # 1st: two entities not asked for (nodule, left upper lobe) and one missing; 2nd: right
        ("b", "findings"): [
            "Cardiomegaly. Nodule in the left upper lobe. No edema. Normal hila.",
            "Cardiomegaly. No nodule. No edema. Normal hila.",
        ],
        # 1st: no usable text (nothing written, nothing unasked); 2nd: one made up (atelectasis); 3rd right
        ("b", "impression"): [
            "   ",
            "Cardiomegaly. Atelectasis. No nodule. No edema. Hila.",
            "Cardiomegaly. No nodule. No edema. Hila.",
        ],
    }
    res = write_reports(Scripted(script), NER, SAMPLES, SEEDS, max_attempts=3)
    assert set(res.findings) == set(res.impressions) == {"a", "b"}
    c = res.counters
    assert (c["findings_first_answers"], c["findings_first_passed"]) == (2, 1)
    assert (c["impression_first_answers"], c["impression_first_passed"]) == (2, 1)
    assert (c["findings_unasked_entities"], c["impression_unasked_entities"]) == (2, 1)
    assert (c["findings_rejected"], c["impression_rejected"]) == (1, 2)
    assert res.per_sample["a"]["findings_first_passed"] == 1 and res.per_sample["b"]["findings_unasked_entities"] == 2
