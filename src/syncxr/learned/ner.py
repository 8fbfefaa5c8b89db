"""The phantom world's learned NER, the analogue of RaTE-NER: a small BERT token classifier with a
WordPiece tokenizer trained here, tagging BIO labels over the RaTE types, trained on the phantom real
corpus's train split with the report writer's exact spans, and loaded through TransformersNER.

The manifest stores texts and entities, not where they are, so each row's spans are rebuilt by writing
its report again from its own scene (the corpus's seeds; `row_scene_report`) and matching the text:
exact by construction, where aligning entity names to the text would have to guess between
overlapping names ("effusion" in "pleural effusion") and a name's negated and plain types.

The tokenizer splits words at whitespace and punctuation but not at hyphens; its pieces are whole
words (the corpus's and the entity names'), single characters and the plural endings "##s", "##es":
so no piece crosses an entity's edge ("effusion" "##s"), the pipeline's `simple` aggregation decodes
each span to exactly the name the writer (and the lexicon NER) gives, "ill-defined opacity" and
"effusion" alike, and a word it never saw is one [UNK] (never a run of letters tagged in part).

The writer orders its sentences (positive findings, then negations, then normal statements), which a
model learns as "after a negation everything is negated"; but an LLM orders them as it likes, and the
vocabulary stage reads FINDINGS and IMPRESSION joined. So each row also gives a text of its FINDINGS
and IMPRESSION sentences in a seeded random order, and a share of the words outside entities are
shown as [UNK] (`unk_rate`), so that words an LLM uses and the corpus does not are read as context.
"""

from __future__ import annotations

import string
import time
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tokenizers import Regex, normalizers, pre_tokenizers
from tqdm.auto import tqdm
from transformers import BertConfig, BertForTokenClassification, get_linear_schedule_with_warmup

from ..entities.lexicon_ner import phantom_lexicon_ner
from ..entities.transformers_ner import TransformersNER
from ..models.phantom_text_encoder import SPECIAL, wordpiece_tokenizer
from ..phantom.corpus import corpus_reports, row_scene_report
from ..phantom.vocabulary import ENTITY_TYPES, phantom_lexicon
from ..reports.loop import entity_key
from ..reports.requests import ReportRequest
from ..reports.template_llm import TemplateLLM
from .model_cache import built_record, ensure_model
from .real_corpus import corpus_spec

LABELS = ("O", *(f"{bi}-{t}" for t in ENTITY_TYPES for bi in "BI"))
LABEL_ID = {name: i for i, name in enumerate(LABELS)}
BUILDER_VERSION = "ner-v2"  # part of the cache key: bump when the tokenizer, labels or training change
IGNORE = -100  # label of the special tokens: no loss
Section = tuple[str, list[tuple[int, int, str]]]  # a section's text and its entities' (start, end, type)


@dataclass(frozen=True)
class NERSpec:
    """Everything that determines the trained NER besides the corpus (part of its cache key)."""

    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 256
    vocab_size: int = 2000
    max_position: int = 512  # longest section (in tokens) the NER reads
    epochs: int = 8  # 0: untrained (a control)
    batch_size: int = 32
    lr: float = 2e-3
    unk_rate: float = 0.1  # share of the words outside entities shown as [UNK] in training
    seed: int = 0

    @classmethod
    def from_dict(cls, spec: dict) -> NERSpec:
        unknown = set(spec) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"ner.spec: unknown key(s) {sorted(unknown)} (allowed: {[f.name for f in fields(cls)]})")
        return cls(**spec)


def writer_sections(corpus: dict, cache_dir: str | Path, split: str) -> list[Section]:
    """FINDINGS and IMPRESSION of every row of `split` of the phantom real corpus, with the writer's
    spans, rebuilt by writing each row's report again (an unpaired row's report is another row's:
    found by its text, among both splits)."""
    spec = corpus_spec(corpus)
    cache = Path(cache_dir).expanduser().resolve()
    rows = pd.concat([corpus_reports(spec, cache, s) for s in ("train", "val")], ignore_index=True)
    truth = {}
    for r in rows.itertuples():
        _, report = row_scene_report(spec, int(r.id.rsplit("-", 1)[1]), tuple(r.labels), r.defect)
        truth[(report.findings, report.impression)] = report.spans
    out: list[Section] = []
    for r in rows[rows["split"] == split].itertuples():
        spans = truth.get((r.findings, r.impression))
        if spans is None:
            raise ValueError(
                f"phantom real corpus {spec.hash} row {r.id}: its report is none the writer gives for the "
                "corpus's scenes (a corpus of another phantom version?); rebuild it"
            )
        out += [(r.findings, list(spans["findings"])), (r.impression, list(spans["impression"]))]
    return out


def _vocab_text(text: str, spans) -> str:
    """`text` with a space after each entity that letters follow, so they count as a word of their own."""
    for _, end, _ in sorted(spans, reverse=True):
        if end < len(text) and (text[end].isalnum() or text[end] == "-"):
            text = f"{text[:end]} {text[end:]}"
    return text


def ner_tokenizer(sections: list[Section], vocab_size: int):
    """A WordPiece tokenizer counted on `sections` (words split at whitespace and punctuation other
    than the hyphen) whose pieces are whole words, characters and plural endings: none crosses an
    entity's edge, and an unknown word is [UNK]. Fixed by the texts alone (ties alphabetical)."""
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(r"[^\w-]"), behavior="isolated")]
    )
    # The words of the world's entity names are tokens even where the corpus never uses them (a rare
    # modifier: "healing"), as a real tokenizer knows the language (the model is trained on the corpus
    # alone); single characters keep digits and punctuation apart from [UNK].
    texts = [" ".join(sorted(phantom_lexicon()))] + [_vocab_text(t, s) for t, s in sections]
    words = Counter(w for t in texts for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(t)))
    chars = sorted(set(string.ascii_lowercase + string.digits + string.punctuation) | {c for w in words for c in w})
    tokens = [*SPECIAL, *chars, "##s", "##es"]
    ranked = [w for w, _ in sorted(words.items(), key=lambda kv: (-kv[1], kv[0])) if len(w) > 1]
    tokens += ranked[: max(vocab_size - len(tokens), 0)]
    return wordpiece_tokenizer({t: i for i, t in enumerate(dict.fromkeys(tokens))}, pre)


def _sentences(section: Section) -> list[Section]:
    """A section's sentences (the writer ends each with a full stop and joins them by a space), each
    with its spans."""
    text, spans = section
    cuts = [0] + [i + 2 for i in range(len(text) - 1) if text[i] in ".!?" and text[i + 1] == " "] + [len(text) + 1]
    return [(text[a : b - 1], [(s - a, e - a, t) for s, e, t in spans if a <= s < b]) for a, b in zip(cuts, cuts[1:])]


def shuffled_report(findings: Section, impression: Section, rng: np.random.Generator) -> Section:
    """The sentences of FINDINGS and IMPRESSION in a random order, joined by spaces, with their spans."""
    sentences = [s for s in (*_sentences(findings), *_sentences(impression)) if s[0]]
    text, spans, at = [], [], 0
    for i in rng.permutation(len(sentences)):
        sent, sent_spans = sentences[i]
        text.append(sent)
        spans += [(at + s, at + e, t) for s, e, t in sent_spans]
        at += len(sent) + 1
    return " ".join(text), spans


def training_texts(sections: list[Section], seed: int) -> list[Section]:
    """Each row's FINDINGS and IMPRESSION (consecutive in `sections`), and its sentences shuffled."""
    rng = np.random.default_rng([seed, 31])
    return sections + [shuffled_report(f, i, rng) for f, i in zip(sections[::2], sections[1::2])]


def token_labels(offsets, spans) -> tuple[list[int], int]:
    """BIO label ids of the tokens at `offsets` (special tokens: IGNORE) and how many tokens cross an
    entity's edge (0 with `ner_tokenizer`)."""
    out, crossing, prev = [], 0, None
    for a, b in offsets:
        if a == b:
            out.append(IGNORE)
            prev = None
            continue
        hit = next((s for s in spans if s[0] <= a < s[1] or a < s[0] < b), None)
        if hit is None:
            out.append(LABEL_ID["O"])
        else:
            crossing += int(a < hit[0] or b > hit[1])
            out.append(LABEL_ID[("I-" if hit == prev else "B-") + hit[2]])
        prev = hit
    return out, crossing


def _encode(tokenizer, sections: list[Section], spec: NERSpec) -> tuple[list[tuple[list, list]], int]:
    """(token ids, labels) of each section, a share `spec.unk_rate` of the words outside entities
    shown as [UNK]; and how many tokens cross an entity's edge."""
    texts = [t for t, _ in sections]
    enc = tokenizer(texts, truncation=True, max_length=spec.max_position, return_offsets_mapping=True)
    rng = np.random.default_rng([spec.seed, 37])
    unk, o = tokenizer.unk_token_id, LABEL_ID["O"]
    items, crossing = [], 0
    for ids, offsets, (text, spans) in zip(enc["input_ids"], enc["offset_mapping"], sections):
        labels, c = token_labels(offsets, spans)
        drop = rng.random(len(ids)) < spec.unk_rate
        word = [lab == o and text[a:b].isalpha() for lab, (a, b) in zip(labels, offsets)]
        items.append(([unk if d and w else i for i, d, w in zip(ids, drop, word)], labels))
        crossing += c
    return items, crossing


def _batches(items, batch_size: int, pad_id: int, gen: torch.Generator):
    """Batches of similar length (less padding), in a seeded random order."""
    order = sorted(range(len(items)), key=lambda i: (len(items[i][0]), i))
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    for j in torch.randperm(len(chunks), generator=gen).tolist():
        rows = [items[i] for i in chunks[j]]
        width = max(len(ids) for ids, _ in rows)
        ids = torch.tensor([ids + [pad_id] * (width - len(ids)) for ids, _ in rows])
        labels = torch.tensor([lab + [IGNORE] * (width - len(lab)) for _, lab in rows])
        yield ids, (ids != pad_id).long(), labels


def train_ner(spec: NERSpec, tokenizer, items, progress: bool = True) -> tuple[BertForTokenClassification, list]:
    """A token classifier trained on `items` (token ids, label ids) for `spec.epochs`; the mean loss
    of each epoch."""
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        intermediate_size=spec.intermediate_size,
        max_position_embeddings=spec.max_position,
        pad_token_id=tokenizer.pad_token_id,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id=LABEL_ID,
    )
    torch.manual_seed(spec.seed)
    model = BertForTokenClassification(config)
    steps = spec.epochs * -(-len(items) // spec.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=0.01)
    sched = get_linear_schedule_with_warmup(opt, max(steps // 20, 1), max(steps, 1))
    gen = torch.Generator().manual_seed(spec.seed)
    losses = []
    model.train()
    with tqdm(total=steps, desc="phantom NER", disable=not progress) as bar:
        for _ in range(spec.epochs):
            total = n = 0
            for ids, mask, labels in _batches(items, spec.batch_size, tokenizer.pad_token_id, gen):
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                total, n = total + loss.item(), n + 1
                bar.update()
                bar.set_postfix(loss=f"{loss.item():.3f}")
            losses.append(total / max(n, 1))
    return model.eval(), losses


def span_quality(ner: TransformersNER, sections: list[Section]) -> dict:
    """Held-out quality of `ner` on `sections` (FINDINGS, IMPRESSION of each row, in turn), decoded
    through its own pipeline (the aggregation generation uses): micro span F1 (exact start, end and
    type); the share of sections whose extraction ({name, type}, each once) equals the writer's
    entities and the lexicon NER's; that share on whole reports (FINDINGS + IMPRESSION, as the
    vocabulary stage reads them); and the share of FINDINGS that the template LLM writes of a row's
    entities which pass the generation's check with this NER (the lexicon NER passes them all)."""
    texts = [t for t, _ in sections]
    tp = n_pred = n_true = 0
    for (_, spans), groups in zip(sections, ner.pipe(texts, batch_size=ner.batch_size)):
        pred = {(int(g["start"]), int(g["end"]), g["entity_group"]) for g in groups}
        tp, n_pred, n_true = tp + len(pred & set(spans)), n_pred + len(pred), n_true + len(set(spans))
    precision, recall = tp / max(n_pred, 1), tp / max(n_true, 1)
    writer = [frozenset((t[a:b].lower(), ty) for a, b, ty in s) for t, s in sections]
    reports = [f"{f} {i}" for f, i in zip(texts[::2], texts[1::2])]
    entities = [[{"name": n, "type": t} for n, t in sorted(f | i)] for f, i in zip(writer[::2], writer[1::2])]
    requests = [ReportRequest(str(k), "findings", e, seed=k) for k, e in enumerate(entities)]
    lexicon = phantom_lexicon_ner()
    return {
        "span_f1": 2 * precision * recall / max(precision + recall, 1e-12),
        "precision": precision,
        "recall": recall,
        "n_val": len(sections),  # held-out sections (FINDINGS and IMPRESSION of each val row)
        "n_val_spans": n_true,
        "writer_agreement": _agreement(ner, texts, writer),
        "lexicon_agreement": _agreement(ner, texts, [entity_key(lexicon.extract(t)) for t in texts]),
        "report_lexicon_agreement": _agreement(ner, reports, [entity_key(lexicon.extract(t)) for t in reports]),
        "template_llm_pass_rate": _agreement(
            ner, TemplateLLM(error_rate=0.0).generate(requests), [entity_key(e) for e in entities]
        ),
    }


def _agreement(ner: TransformersNER, texts: list[str], expected: list[frozenset]) -> float:
    """The share of `texts` whose extraction by `ner` is exactly `expected`."""
    got = [entity_key(e) for e in ner.extract_batch(texts)]
    return sum(g == e for g, e in zip(got, expected)) / max(len(texts), 1)


def build_ner(spec: NERSpec, corpus: dict, cache_dir: str | Path, out: Path, progress: bool = True) -> dict:
    """Trains the NER of `spec` on the real corpus's train split into `out`; what to record: build
    seconds, losses and held-out quality on the val split."""
    start = time.perf_counter()
    train = writer_sections(corpus, cache_dir, "train")
    tokenizer = ner_tokenizer(train, spec.vocab_size)
    items, crossing = _encode(tokenizer, training_texts(train, spec.seed), spec)
    # Built on first use: must not move the caller's random stream (training draws from it, and so
    # does the pipeline that scores the model: its DataLoader draws a seed)
    with torch.random.fork_rng():
        model, losses = train_ner(spec, tokenizer, items, progress)
        tokenizer.save_pretrained(out)
        model.save_pretrained(out)
        seconds = time.perf_counter() - start
        val = writer_sections(corpus, cache_dir, "val")
        quality = span_quality(TransformersNER(str(out), spec.batch_size), val)
    return {
        "seconds": seconds,
        "torch_threads": torch.get_num_threads(),
        "n_train": len(train),
        "crossing_tokens": crossing,
        "losses": losses,
        "quality": quality,
    }


def phantom_ner(
    cache_dir: str, corpus: dict, spec: dict, batch_size: int, device: int | str | None = None, progress: bool = True
) -> TransformersNER:
    """The learned phantom NER (trained and cached on first use) loaded by TransformersNER, with its
    held-out `quality` from the build record."""
    s = NERSpec.from_dict(spec)
    key = {"builder": BUILDER_VERSION, "corpus": corpus_spec(corpus).to_dict(), **asdict(s)}
    path = ensure_model(cache_dir, "ner", key, lambda out: build_ner(s, corpus, cache_dir, out, progress))
    ner = TransformersNER(str(path), batch_size, device)
    ner.quality = built_record(path)["quality"]
    return ner
