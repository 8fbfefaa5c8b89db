"""Report LMs trained here: causal LMs that write FINDINGS and IMPRESSION from the prompt real LLMs
get, trained from scratch on the phantom real corpus's train split, and loaded back through
TransformersLLM, the class real checkpoints use.

The network is a Llama (LlamaForCausalLM from a LlamaConfig): the family of the paper's LLMs
(Llama-3.1, Meditron3), and its rotary positions set no learned limit on prompt length. The loss
is on the answer tokens only (and the end-of-sequence token that stops it), as instruction tuning
does; the optimiser is AdamW with a transformers cosine schedule after a linear warm-up. Every prompt
opens with the same system prompt (and every FINDINGS request with the same instruction): a batch's
shared opening is run once and its keys and values repeated over the batch (`batch_loss`: the same
loss and gradients for about a quarter less work), batches grouped by the kind of request."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, get_cosine_schedule_with_warmup

from ..entities.lexicon_ner import phantom_lexicon_ner
from ..phantom.corpus import corpus_reports
from ..reports.transformers_llm import TransformersLLM
from .chat_tokenizer import train_chat_tokenizer
from .model_cache import ensure_model
from .real_corpus import corpus_spec
from .report_pairs import Pair, report_pairs, request_pairs

KIND = "report_lm"
IGNORE = -100  # label of a prompt token: no loss


@dataclass(frozen=True)
class ReportLMSpec:
    """The network and its training: everything that fixes the cached model (its address)."""

    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 384
    vocab_size: int = 2000  # words and characters; the phantom reports and prompts need fewer
    steps: int = 1500  # optimiser steps
    batch_size: int = 32  # sequences per step
    lr: float = 2e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    seed: int = 0
    # generation-shaped requests added to the corpus's pairs (report_pairs.request_pairs)
    request_pairs: int = 0

    def __post_init__(self):
        for name in ("hidden_size", "num_layers", "num_heads", "intermediate_size", "steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"report LM {name} must be >= 1, got {getattr(self, name)}")
        if self.request_pairs < 0:
            raise ValueError(f"report LM request_pairs must be >= 0, got {self.request_pairs}")
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"report LM hidden_size {self.hidden_size} must be a multiple of num_heads {self.num_heads}"
            )
        if self.lr <= 0 or self.weight_decay < 0 or self.warmup_steps < 0:
            raise ValueError(
                f"report LM needs lr > 0, weight_decay >= 0, warmup_steps >= 0; got "
                f"{self.lr}, {self.weight_decay}, {self.warmup_steps}"
            )


def report_lm_spec(lm: dict) -> ReportLMSpec:
    try:
        return ReportLMSpec(**lm)
    except TypeError as e:
        raise ValueError(f"llm.lm: {e} (allowed: {sorted(ReportLMSpec.__dataclass_fields__)})") from e


def _prompt(tok: PreTrainedTokenizerFast, messages: list[dict]) -> str:
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def encode(tok: PreTrainedTokenizerFast, pairs: list[Pair]) -> list[tuple[list[int], int]]:
    """(token ids of prompt + answer + eos, length of the prompt) per pair, tokenized exactly as
    TransformersLLM tokenizes a prompt (chat template, no added special tokens)."""
    prompts = tok([_prompt(tok, p.messages) for p in pairs], add_special_tokens=False)["input_ids"]
    answers = tok([p.answer for p in pairs], add_special_tokens=False)["input_ids"]
    return [(q + a + [tok.eos_token_id], len(q)) for q, a in zip(prompts, answers)]


def collate(items: list[tuple[list[int], int]], pad_id: int) -> dict[str, torch.Tensor]:
    """A right-padded batch whose labels are the answer tokens only."""
    width = max(len(ids) for ids, _ in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for i, (seq, n_prompt) in enumerate(items):
        ids[i, : len(seq)] = torch.tensor(seq)
        labels[i, n_prompt : len(seq)] = torch.tensor(seq[n_prompt:])
        mask[i, : len(seq)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _batches(n_items: int, spec: ReportLMSpec, keys: list[tuple], gen: torch.Generator):
    """Index batches for `spec.steps` steps: a fresh permutation per pass, cut into windows of 16
    batches sorted by `keys` (the kind of prompt, then the length: less padding, longer shared
    prompt openings), the batches of a window in random order."""
    window = 16 * spec.batch_size
    while True:
        perm = torch.randperm(n_items, generator=gen).tolist()
        for start in range(0, n_items, window):
            chunk = sorted(perm[start : start + window], key=lambda i: keys[i])
            cut = [chunk[j : j + spec.batch_size] for j in range(0, len(chunk), spec.batch_size)]
            for k in torch.randperm(len(cut), generator=gen).tolist():
                yield cut[k]


def shared_prefix(items: list[tuple[list[int], int]]) -> int:
    """How many opening tokens every item of a batch has in common (system prompt, instruction),
    short of each prompt's last token (whose output predicts the answer's first)."""
    first, n = items[0][0], min(n_prompt for _, n_prompt in items) - 1
    for ids, _ in items[1:]:
        n = next((j for j in range(n) if ids[j] != first[j]), n)
    return max(n, 0)


def sort_keys(items: list[tuple[list[int], int]]) -> list[tuple[int, int]]:
    """(the first token where prompts differ: the kind of request, length) of each item."""
    first = items[0][0]
    common = min((next((j for j, (a, b) in enumerate(zip(ids, first)) if a != b), len(ids)) for ids, _ in items))
    return [(ids[common] if common < len(ids) else -1, len(ids)) for ids, _ in items]


def batch_loss(model, batch: dict[str, torch.Tensor], shared: int) -> torch.Tensor:
    """The answer loss of a batch whose first `shared` tokens are the same in every row: their keys and
    values are computed once (one row) and repeated over the batch, the same loss for less work."""
    if shared < 1:
        return model(**batch).loss
    ids = batch["input_ids"]
    cache = model.model(input_ids=ids[:1, :shared], use_cache=True).cache
    cache.batch_repeat_interleave(len(ids))
    rest = {"input_ids": ids[:, shared:], "labels": batch["labels"][:, shared:]}
    return model(**rest, attention_mask=batch["attention_mask"], cache=cache, use_cache=True).loss


def mean_answer_loss(model, data: list[tuple[list[int], int]], pad_id: int, batch_size: int = 64) -> float:
    """Cross-entropy per answer token over `data` (the held-out figure)."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(data), batch_size):
            batch = collate(data[i : i + batch_size], pad_id)
            n = int((batch["labels"][:, 1:] != IGNORE).sum())  # the model shifts labels by one
            total += float(model(**batch).loss) * n
            count += n
    model.train()
    return total / max(count, 1)


def new_model(spec: ReportLMSpec, tok: PreTrainedTokenizerFast) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_heads,
        max_position_embeddings=1024,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


def train_lm(spec: ReportLMSpec, model, train: list[tuple[list[int], int]], pad_id: int, progress: bool) -> float:
    """Trains `model` in place for spec.steps steps; returns the mean loss of the last 50 steps."""
    gen = torch.Generator().manual_seed(spec.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    sched = get_cosine_schedule_with_warmup(opt, spec.warmup_steps, spec.steps)
    batches = _batches(len(train), spec, sort_keys(train), gen)
    model.train()
    recent: list[float] = []
    bar = tqdm(range(spec.steps), desc="report LM", disable=not progress, mininterval=2.0)
    for _ in bar:
        items = [train[i] for i in next(batches)]
        loss = batch_loss(model, collate(items, pad_id), shared_prefix(items))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        recent = [*recent[-49:], loss.item()]
        bar.set_postfix(loss=f"{recent[-1]:.3f}", refresh=False)
    return sum(recent) / len(recent)


def build_report_lm(spec: ReportLMSpec, corpus: dict, cache_dir: str | Path, target: Path, progress: bool) -> dict:
    """Trains the LM of `spec` on the corpus's train split and saves model and tokenizer into
    `target`; returns what ensure_model records (seconds, losses, sizes)."""
    start = time.perf_counter()
    ner, cspec = phantom_lexicon_ner(), corpus_spec(corpus)
    train_rows = corpus_reports(cspec, cache_dir, "train")
    train_pairs = report_pairs(train_rows, ner, spec.seed) + request_pairs(
        train_rows, ner, spec.request_pairs, spec.seed
    )
    val_pairs = report_pairs(corpus_reports(cspec, cache_dir, "val"), ner, spec.seed)
    if not train_pairs or not val_pairs:
        raise ValueError(
            f"corpus: the report LM needs train and val reports, got {len(train_pairs)} and {len(val_pairs)} pairs"
        )
    tok = pairs_tokenizer(train_pairs, spec.vocab_size)
    train, val = encode(tok, train_pairs), encode(tok, val_pairs)
    with torch.random.fork_rng():  # built on first use: must not move the caller's random stream
        torch.manual_seed(spec.seed)
        model = new_model(spec, tok)
        init_val = mean_answer_loss(model, val, tok.pad_token_id)
        final = train_lm(spec, model, train, tok.pad_token_id, progress)
    held_out = mean_answer_loss(model, val, tok.pad_token_id)
    model.save_pretrained(target)
    tok.save_pretrained(target)
    return {
        "build_seconds": round(time.perf_counter() - start, 1),
        "final_train_loss": round(final, 4),
        "held_out_loss": round(held_out, 4),
        "held_out_loss_at_init": round(init_val, 4),
        "held_out_perplexity": round(math.exp(held_out), 3),
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tok),
        "train_pairs": len(train_pairs),
        "val_pairs": len(val_pairs),
        "train_tokens_per_pass": sum(len(ids) for ids, _ in train),
    }


def pairs_tokenizer(pairs: list[Pair], vocab_size: int) -> PreTrainedTokenizerFast:
    """The chat tokenizer of the training pairs' messages and answers."""
    texts = [m["content"] for p in pairs for m in p.messages] + [p.answer for p in pairs]
    return train_chat_tokenizer(texts, vocab_size)


def ensure_report_lm(cache_dir: str | Path, corpus: dict, lm: dict, progress: bool = True) -> Path:
    """The cached directory of the report LM of `lm` trained on `corpus`, built on first use."""
    spec = report_lm_spec(lm)
    key = {"lm": asdict(spec), "corpus": corpus_spec(corpus).to_dict()}
    return ensure_model(cache_dir, KIND, key, lambda tmp: build_report_lm(spec, corpus, cache_dir, tmp, progress))


def phantom_report_lm(cache_dir: str, corpus: dict, lm: dict, progress: bool = True, **sampling) -> TransformersLLM:
    """The `llm=phantom_lm_*` presets' target: the report LM of `lm` (trained on first use) loaded
    by TransformersLLM with the preset's sampling settings (batch_size, max_new_tokens, temperature,
    top_p, dtype, ...)."""
    return TransformersLLM(str(ensure_report_lm(cache_dir, corpus, lm, progress)), **sampling)
