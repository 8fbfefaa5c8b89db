"""The report loop: FINDINGS from sampled entities, then IMPRESSION, each checked by NER.

A text is accepted only when the NER extracts exactly the sampled entities; otherwise it is
regenerated with a new seed, up to `max_attempts`. Every rejected text is kept for inspection.
Requests go to the LLM in batches across samples, so batched and concurrent backends stay busy.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .requests import ReportRequest, clean_section


def entity_key(entities) -> frozenset:
    return frozenset((e["name"].lower(), e["type"]) for e in entities)


@dataclass
class ReportResult:
    findings: dict[str, str] = field(default_factory=dict)  # sample id -> text
    impressions: dict[str, str] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)  # sample id -> LLM calls spent
    rejects: list[dict] = field(default_factory=list)
    counters: Counter = field(default_factory=Counter)


def _section(llm, ner, samples: dict[str, list[dict]], seeds: dict[str, int], section: str,
             max_attempts: int, result: ReportResult, findings: dict[str, str] | None = None) -> dict[str, str]:
    accepted: dict[str, str] = {}
    pending = list(samples)
    for attempt in range(max_attempts):
        if not pending:
            break
        reqs = [ReportRequest(sid, section, samples[sid], seed=seeds[sid] * 1000 + attempt,
                              findings=(findings or {}).get(sid, "")) for sid in pending]
        texts = llm.generate(reqs)
        result.counters[f"{section}_calls"] += len(reqs)
        still = []
        for req, raw in zip(reqs, texts):
            result.attempts[req.sample_id] = result.attempts.get(req.sample_id, 0) + 1
            text = clean_section(raw, section)
            if text is None:
                result.counters[f"{section}_failed_calls"] += 1
                reason, got = "no usable text", []
            else:
                got = ner.extract(text)
                if entity_key(got) == entity_key(req.entities):
                    accepted[req.sample_id] = text
                    continue
                reason = "entities differ"
            result.counters[f"{section}_rejected"] += 1
            result.rejects.append({"id": req.sample_id, "section": section, "attempt": attempt,
                                   "reason": reason, "text": text or "", "expected": req.entities,
                                   "extracted": got})
            still.append(req.sample_id)
        pending = still
    result.counters[f"{section}_gave_up"] += len(pending)
    return accepted


def write_reports(llm, ner, samples: dict[str, list[dict]], seeds: dict[str, int],
                  max_attempts: int = 5) -> ReportResult:
    """FINDINGS and IMPRESSION for each sample id -> entity list; failures are counted and kept."""
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    result = ReportResult()
    result.findings = _section(llm, ner, samples, seeds, "findings", max_attempts, result)
    with_findings = {sid: samples[sid] for sid in samples if sid in result.findings}
    result.impressions = _section(llm, ner, with_findings, seeds, "impression", max_attempts, result,
                                  findings=result.findings)
    return result
