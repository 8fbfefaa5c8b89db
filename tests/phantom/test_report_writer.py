import hashlib
import json

import numpy as np
import pytest

from syncxr.phantom.report_writer import finding_phrase, write_report
from syncxr.phantom.scene import sample_scene
from syncxr.phantom.vocabulary import (
    ABNORMALITY,
    ANATOMY,
    DISEASE,
    ENTITY_TYPES,
    FINDINGS,
    NON_ABNORMALITY,
    NON_DISEASE,
    SEVERITIES,
    site_word,
    surface_forms,
    term_index,
)

TERMS = term_index()


def _reports(n=300, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        keys = list(rng.choice(list(FINDINGS), size=int(rng.integers(0, 4)), replace=False))
        scene = sample_scene(rng, keys)
        yield scene, write_report(scene, rng)


def test_recorded_entities_appear_in_the_text_with_known_types():
    for _, r in _reports():
        text = f"{r.findings} {r.impression}".lower()
        assert r.entities, r
        for e in r.entities:
            assert e["type"] in ENTITY_TYPES
            assert e["name"] in text, (e, text)


def test_negated_findings_are_typed_non_abnormality_or_non_disease():
    seen_negation = 0
    for scene, r in _reports():
        present = set(scene.finding_keys)
        for e in r.entities:
            if e["name"] not in TERMS:
                continue
            concept = TERMS[e["name"]][0]
            if e["type"] in (NON_ABNORMALITY, NON_DISEASE):
                seen_negation += 1
                assert concept not in present
                sentences = [x.strip().lower() for x in r.findings.split(".")]
                assert any(e["name"] in x and x.startswith(("no ", "there is no ")) for x in sentences)
                expected = NON_ABNORMALITY if FINDINGS[concept].entity_type == ABNORMALITY else NON_DISEASE
                assert e["type"] == expected
            else:
                assert concept in present, (e, scene.finding_keys)
                assert e["type"] in (ABNORMALITY, DISEASE)
    assert seen_negation > 100


def test_every_present_finding_is_reported_at_its_site_with_a_true_severity():
    for scene, r in _reports():
        by_type = {(e["name"], e["type"]) for e in r.entities}
        for f in scene.findings:
            named = [n for n, ty in by_type if ty in (ABNORMALITY, DISEASE) and TERMS.get(n, ("",))[0] == f.key]
            assert named, (f, r.findings)
            # a modifier that states a severity states the drawn one
            assert all(TERMS[n][1] in (None, SEVERITIES.index(f.severity)) for n in named), (f, named)
            assert (site_word(f.site), ANATOMY) in by_type, (f, r.findings)


def test_phrasing_varies_but_is_seeded():
    scene = sample_scene(np.random.default_rng(1), ["consolidation", "pleural_effusion"])
    texts = {write_report(scene, np.random.default_rng(s)).findings for s in range(20)}
    assert len(texts) > 10
    a = write_report(scene, np.random.default_rng(3))
    b = write_report(scene, np.random.default_rng(3))
    assert a == b


def test_phrases_use_every_form_of_a_finding():
    t = FINDINGS["pleural_effusion"]
    rng = np.random.default_rng(0)
    got = {finding_phrase(t, "large", rng) for _ in range(3000)}
    expect = {s for s, level in surface_forms(t).items() if level in (None, 2)}
    assert got == expect  # every synonym, alone and with each true modifier; no false severity


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_negation_rate_scales_how_often_absences_are_stated(rate):
    scene = sample_scene(np.random.default_rng(2), ["pacemaker"])
    r = write_report(scene, np.random.default_rng(0), negation_rate=rate)
    negated = {TERMS[e["name"]][0] for e in r.entities if e["type"] in (NON_ABNORMALITY, NON_DISEASE)}
    always = {k for k, t in FINDINGS.items() if t.negation_weight >= 1.0}
    never = {k for k, t in FINDINGS.items() if t.negation_weight == 0.0}
    if rate == 0.0:
        assert negated == set()
    else:
        assert always <= negated and not negated & never


def test_spans_mark_every_entity_where_the_writer_placed_it():
    for _, r in _reports(n=500, seed=3):
        placed = []
        for section, text in (("findings", r.findings), ("impression", r.impression)):
            prev_end = 0
            for start, end, etype in r.spans[section]:
                assert prev_end <= start < end <= len(text), (section, text, r.spans[section])
                assert {"name": text[start:end].lower(), "type": etype} in r.entities, (text[start:end], etype)
                placed.append({"name": text[start:end].lower(), "type": etype})
                prev_end = end
        # each recorded entity is placed somewhere (the record's order is that of logging: "The lungs
        # are clear." is logged last and placed first)
        assert {tuple(e.values()) for e in placed} == {tuple(e.values()) for e in r.entities}


def test_recording_spans_changes_no_text_and_no_draw():
    """Reports of many scenes (and the random stream after them) are byte-identical to the writer's
    before spans were recorded: the phantom corpora's cached hashes stay valid."""
    h = hashlib.sha256()
    rng = np.random.default_rng(2024)
    for _ in range(2000):
        keys = list(rng.choice(list(FINDINGS), size=int(rng.integers(0, 5)), replace=False))
        scene = sample_scene(rng, keys)
        r = write_report(scene, rng, float(rng.choice([0.0, 0.5, 1.0])))
        h.update(json.dumps([r.findings, r.impression, r.entities]).encode())
    h.update(str(rng.random()).encode())
    assert h.hexdigest() == "69b33dda1d904bed8f26254c31469370f0e9542e996e01a62599abc5fc56c50d"
