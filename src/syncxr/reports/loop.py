"""The report loop: FINDINGS from sampled entities, then IMPRESSION, each checked by NER.

A text is accepted only when the NER extracts exactly the sampled entities; otherwise it is
regenerated with a new seed, up to `max_attempts`. Every rejected text is kept for inspection.
Requests go to the LLM in batches across samples, so batched and concurrent backends stay busy.

A sample whose request the LLM backend could not answer (a `BackendFailure`: server down, timeouts,
empty answers) is set aside as *retryable*: it is neither accepted nor dropped, and its counters and
rejects are left out, so that a later run that redoes it from its first attempt gives what an
uninterrupted run would have given. A backend that finds its own setup wrong raises
`BackendMisconfigured`, which stops the shard before anything of it is committed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from ..backends import LLM, NER
from .backend_failure import is_backend_failure
from .requests import ReportRequest, clean_section


def entity_key(entities) -> frozenset:
    return frozenset((e["name"].lower(), e["type"]) for e in entities)


@dataclass
class ReportResult:
    findings: dict[str, str] = field(default_factory=dict)  # sample id -> text
    impressions: dict[str, str] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)  # sample id -> LLM calls spent
    rejects: list[dict] = field(default_factory=list)
    counters: Counter = field(default_factory=Counter)  # of the samples that finished (not retryable)
    retryable: dict[str, str] = field(default_factory=dict)  # sample id -> the backend failure that stopped it
    per_sample: dict[str, Counter] = field(default_factory=dict)  # the counters of each finished sample


@dataclass
class _SectionWriter:
    """Writes one section of many reports, retrying a sample while its text misses its entities;
    what both sections share: the backends, the seeds, the attempts allowed and the counters."""

    llm: LLM
    ner: NER
    seeds: dict[str, int]
    max_attempts: int
    result: ReportResult
    per_sample: dict[str, Counter]

    def write(
        self, samples: dict[str, list[dict]], section: str, findings: dict[str, str] | None = None
    ) -> dict[str, str]:
        llm, ner, seeds, result, per_sample = self.llm, self.ner, self.seeds, self.result, self.per_sample
        accepted: dict[str, str] = {}
        pending = list(samples)
        for attempt in range(self.max_attempts):
            if not pending:
                break
            reqs = [
                ReportRequest(
                    sid, section, samples[sid], seed=seeds[sid] * 1000 + attempt, findings=(findings or {}).get(sid, "")
                )
                for sid in pending
            ]
            texts = llm.generate(reqs)
            if len(texts) != len(reqs):  # zip would pair answers with the wrong samples
                raise ValueError(
                    f"llm {getattr(llm, 'name', llm)!r} returned {len(texts)} answers for {len(reqs)} requests"
                )
            still = []
            for req, raw in zip(reqs, texts):
                sid = req.sample_id
                if is_backend_failure(raw):
                    result.retryable[sid] = f"llm:{raw.reason}"
                    continue
                counts = per_sample[sid]
                counts[f"{section}_calls"] += 1
                counts[f"{section}_first_answers"] += int(attempt == 0)
                result.attempts[sid] = result.attempts.get(sid, 0) + 1
                text = clean_section(raw, section)
                if text is None:
                    counts[f"{section}_failed_calls"] += 1
                    reason, got = "no usable text", []
                else:
                    got = ner.extract(text)
                    if entity_key(got) == entity_key(req.entities):
                        accepted[sid] = text
                        counts[f"{section}_first_passed"] += int(attempt == 0)
                        continue
                    reason = "entities differ"
                counts[f"{section}_rejected"] += 1
                # entities the answer wrote that were not asked for (what the LLM made up)
                counts[f"{section}_unasked_entities"] += len(entity_key(got) - entity_key(req.entities))
                result.rejects.append(
                    {
                        "id": sid,
                        "section": section,
                        "attempt": attempt,
                        "reason": reason,
                        "text": text or "",
                        "expected": req.entities,
                        "extracted": got,
                    }
                )
                still.append(sid)
            pending = still
        for sid in pending:
            per_sample[sid][f"{section}_gave_up"] += 1
        return accepted


def write_reports(
    llm: LLM, ner: NER, samples: dict[str, list[dict]], seeds: dict[str, int], max_attempts: int = 5
) -> ReportResult:
    """FINDINGS and IMPRESSION for each sample id -> entity list; failures are counted and kept,
    samples the backend failed on are returned as `retryable`."""
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    result = ReportResult()
    per_sample: dict[str, Counter] = defaultdict(Counter)
    writer = _SectionWriter(llm, ner, seeds, max_attempts, result, per_sample)
    findings = writer.write(samples, "findings")
    with_findings = {sid: samples[sid] for sid in samples if sid in findings and sid not in result.retryable}
    impressions = writer.write(with_findings, "impression", findings=findings)
    retry = result.retryable
    result.findings = {sid: t for sid, t in findings.items() if sid not in retry}
    result.impressions = {sid: t for sid, t in impressions.items() if sid not in retry}
    result.attempts = {sid: n for sid, n in result.attempts.items() if sid not in retry}
    result.rejects = [r for r in result.rejects if r["id"] not in retry]
    for section in ("findings", "impression"):
        result.counters[f"{section}_gave_up"] += 0  # present even when nothing gave up
    for sid in samples:
        if sid not in retry:
            result.per_sample[sid] = per_sample[sid]
            result.counters.update(per_sample[sid])
    return result
