"""Report LMs trained here: causal LMs that write FINDINGS and IMPRESSION from the prompt real LLMs
get, trained from scratch on the phantom real corpus's train split, and loaded back through
TransformersLLM, the class real checkpoints use.

The network is a Llama (LlamaForCausalLM from a LlamaConfig): the family of the paper's LLMs
(Llama-3.1, Meditron3), and its rotary positions set no learned limit on prompt length. The loss
is on the answer tokens only (and the end-of-sequence token that stops it), as instruction tuning
does; the optimiser is AdamW with a transformers cosine schedule after a linear warm-up."""

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
from .report_pairs import Pair, report_pairs

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

    def __post_init__(self):
        for name in ("hidden_size", "num_layers", "num_heads", "intermediate_size", "steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"report LM {name} must be >= 1, got {getattr(self, name)}")
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


def _batches(n_items: int, spec: ReportLMSpec, lengths: list[int], gen: torch.Generator):
    """Index batches for `spec.steps` steps: a fresh permutation per pass, cut into windows of 16
    batches sorted by length (less padding), the batches of a window in random order."""
    window = 16 * spec.batch_size
    while True:
        perm = torch.randperm(n_items, generator=gen).tolist()
        for start in range(0, n_items, window):
            chunk = sorted(perm[start : start + window], key=lambda i: lengths[i])
            cut = [chunk[j : j + spec.batch_size] for j in range(0, len(chunk), spec.batch_size)]
            for k in torch.randperm(len(cut), generator=gen).tolist():
                yield cut[k]


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
    batches = _batches(len(train), spec, [len(ids) for ids, _ in train], gen)
    model.train()
    recent: list[float] = []
    bar = tqdm(range(spec.steps), desc="report LM", disable=not progress, mininterval=2.0)
    for _ in bar:
        loss = model(**collate([train[i] for i in next(batches)], pad_id)).loss
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
    train_pairs = report_pairs(corpus_reports(cspec, cache_dir, "train"), ner, spec.seed)
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
