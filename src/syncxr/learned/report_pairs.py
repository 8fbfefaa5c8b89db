"""What the report LMs learn from: the requests generation makes (`ReportRequest.messages()`, the
very prompt real LLMs get) paired with the phantom real corpus's own section texts.

Generation (reports/loop.py) asks both sections of a sample for the SAME entity set: FINDINGS with
all the sampled entities, then IMPRESSION with its accepted FINDINGS and, again, all of them. The
corpus shows each section with its own entities (the lexicon NER on the section's text, which agrees
exactly with the report writer): a FINDINGS names its findings, negations and normal structures, an
IMPRESSION only the present findings in fewer words (or none: "No acute cardiopulmonary process.").
So an impression asked to keep a negation or a normal structure has no example in the corpus. The
bridge: besides each report's own pair (IMPRESSION entities -> IMPRESSION), a second impression pair
asks, as generation does, for every entity of the FINDINGS and answers with the IMPRESSION's
sentences whose entities the FINDINGS has, followed by the FINDINGS sentences that carry the rest:
text of the same report, whose entities are exactly those asked (checked with the NER).

Generation asks for few entities at a time (k findings and m structures, 2 and 2 by default), a
corpus FINDINGS names six on average: a fourth pair per report asks for the entities of a random
part of its FINDINGS sentences (in their order) and answers with those sentences. And generation
draws its entities independently from the corpus's vocabulary ("new micronodular pattern" with
"improving pulmonary mass" in the "superior mediastinum"), combinations no report shows, which a
model can only write by copying the asked words: a fifth pair is that part with each entity swapped
for another the train split names with the same type (every occurrence; the NER must find exactly
the swapped set, else the part is kept as it is).

Those five are still corpus-shaped (a swapped part keeps its report's sentences and few of its
entities change). So the pairs are weighted toward requests made exactly as generation makes them
(`request_pairs`): k finding entities and m structures drawn independently and uniformly from the
train split's entity vocabulary, answered by the corpus's own report writer with its templates filled
with exactly those entities (phantom.report_writer.entities_text), and the IMPRESSION of that
FINDINGS for every second one."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..backends import NER
from ..entities.long_tail import report_texts
from ..entities.vocabulary import build_vocabulary
from ..phantom.report_writer import entities_text
from ..phantom.vocabulary import ANATOMY
from ..reports.loop import entity_key
from ..reports.requests import ReportRequest

_SENTENCES = re.compile(r"[^.!?]+[.!?]?")  # as the lexicon NER splits them
# How many finding entities (k) and structures (m) a generation-shaped request names, each drawn
# uniformly from these: around generation's k=2, m=2 (sampling/balanced.yaml) and the paper's k=3, m=2.
K_DRAWS = (1, 2, 2, 3, 3, 4)
M_DRAWS = (0, 1, 2, 2, 2, 3)


@dataclass(frozen=True)
class Pair:
    """One training example: the chat messages of a request and the section text that answers it."""

    messages: list[dict]
    answer: str
    section: str
    entities: list[dict]


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCES.findall(text) if s.strip()]


def keeping_impression(findings: str, impression: str, ner: NER) -> str:
    """An IMPRESSION of this report that keeps every entity of its FINDINGS and adds none: the
    IMPRESSION's sentences whose entities the FINDINGS has, then the FINDINGS sentences that carry
    the entities still missing; the FINDINGS itself when that mix does not check out."""
    wanted = entity_key(ner.extract(findings))
    kept = [s for s in _sentences(impression) if (ents := ner.extract(s)) and entity_key(ents) <= wanted]
    have = entity_key([e for s in kept for e in ner.extract(s)])
    for s in _sentences(findings):
        ents = entity_key(ner.extract(s))
        if ents - have:
            kept.append(s)
            have |= ents
    text = " ".join(kept)
    return text if entity_key(ner.extract(text)) == wanted else findings


def part_of_findings(findings: str, rng: np.random.Generator) -> str:
    """Some of the FINDINGS sentences, in their order: at least one, fewer than all when it has more."""
    sentences = _sentences(findings)
    if len(sentences) < 2:
        return findings
    n = int(rng.integers(1, len(sentences)))
    return " ".join(sentences[i] for i in sorted(rng.choice(len(sentences), size=n, replace=False)))


def names_by_type(rows: pd.DataFrame, ner: NER) -> dict[str, list[str]]:
    """The entity names the FINDINGS of `rows` use, per type (sorted: the same in every process)."""
    names: dict[str, set[str]] = {}
    for text in rows["findings"]:
        for e in ner.extract(text):
            names.setdefault(e["type"], set()).add(e["name"])
    return {t: sorted(v) for t, v in sorted(names.items())}


def swap_entities(text: str, ner: NER, names: dict[str, list[str]], rng: np.random.Generator) -> str:
    """`text` with each of its entities replaced (every occurrence, a capital kept) by another name
    of its type drawn from `names`; `text` itself when the NER would not find exactly the new set."""
    ents = ner.extract(text)
    if not ents:
        return text
    new = {e["name"]: names[e["type"]][int(rng.integers(len(names[e["type"]])))] for e in ents}
    pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in sorted(new, key=len, reverse=True)) + r")\b", re.I)

    def repl(m: re.Match) -> str:
        name = new[m.group(1).lower()]
        return name[0].upper() + name[1:] if m.group(1)[0].isupper() else name

    swapped = pattern.sub(repl, text)
    wanted = entity_key([{"name": new[e["name"]], "type": e["type"]} for e in ents])
    return swapped if entity_key(ner.extract(swapped)) == wanted else text


def report_pairs(rows: pd.DataFrame, ner: NER, seed: int = 0) -> list[Pair]:
    """Five pairs per report: its FINDINGS request, its own IMPRESSION request, the bridging
    IMPRESSION request that keeps every FINDINGS entity, the request of a part of its FINDINGS and
    that part with its entities swapped (drawn with `seed`; see the module's docstring)."""
    rng = np.random.default_rng(seed)
    names = names_by_type(rows, ner)
    out: list[Pair] = []
    for r in rows.itertuples():
        f_ents, i_ents = ner.extract(r.findings), ner.extract(r.impression)
        part = part_of_findings(r.findings, rng)
        swapped = swap_entities(part, ner, names, rng)
        requests = [
            (ReportRequest(r.id, "findings", f_ents, seed=0), r.findings),
            (ReportRequest(r.id, "impression", i_ents, seed=0, findings=r.findings), r.impression),
            (
                ReportRequest(r.id, "impression", f_ents, seed=0, findings=r.findings),
                keeping_impression(r.findings, r.impression, ner),
            ),
            (ReportRequest(r.id, "findings", ner.extract(part), seed=0), part),
            (ReportRequest(r.id, "findings", ner.extract(swapped), seed=0), swapped),
        ]
        out += [Pair(req.messages(), answer, req.section, req.entities) for req, answer in requests]
    return out


def findings_requests(rows: pd.DataFrame, ner: NER, seed: int) -> list[ReportRequest]:
    """The FINDINGS requests of `rows` (held-out reports), each with its own seed, as generation
    asks them: what the first-attempt exact-entity rate is measured on."""
    return [
        ReportRequest(r.id, "findings", ner.extract(r.findings), seed=seed * 100_000 + i)
        for i, r in enumerate(rows.itertuples())
    ]


def request_pairs(rows: pd.DataFrame, ner: NER, n: int, seed: int = 0) -> list[Pair]:
    """`n` requests shaped as generation makes them, each giving its FINDINGS pair and every second
    one the IMPRESSION pair of that FINDINGS too: k finding entities and m structures drawn
    independently and uniformly from the entity vocabulary of `rows` (what generation's vocabulary
    stage builds from the same reports), answered by the report writer's own templates filled with
    exactly those entities (phantom.report_writer.entities_text). A draw whose text the NER does not
    read back as asked is left out."""
    vocab = build_vocabulary(report_texts(rows), ner, progress=False)
    anatomy = vocab["type"] == ANATOMY
    pools = [
        vocab.loc[~anatomy, ["name", "type"]].to_dict("records"),
        vocab.loc[anatomy, ["name", "type"]].to_dict("records"),
    ]
    rng = np.random.default_rng([seed, 23])
    out: list[Pair] = []
    for i in range(n):
        sizes = (K_DRAWS[int(rng.integers(len(K_DRAWS)))], M_DRAWS[int(rng.integers(len(M_DRAWS)))])
        ents = [
            pool[j]
            for pool, size in zip(pools, sizes)
            for j in rng.choice(len(pool), min(size, len(pool)), replace=False)
        ]
        if len({e["name"] for e in ents}) < len(ents):
            continue  # generation never asks one name twice
        findings, impression = (entities_text(ents, section, rng) for section in ("findings", "impression"))
        if not entity_key(ner.extract(findings)) == entity_key(ner.extract(impression)) == entity_key(ents):
            continue
        asked = [(ReportRequest(f"q{i}", "findings", ents, seed=0), findings)]
        if i % 2:  # FINDINGS is where copying is learnt (an IMPRESSION copies its FINDINGS): every second one
            asked.append((ReportRequest(f"q{i}", "impression", ents, seed=0, findings=findings), impression))
        out += [Pair(req.messages(), answer, req.section, req.entities) for req, answer in asked]
    return out
