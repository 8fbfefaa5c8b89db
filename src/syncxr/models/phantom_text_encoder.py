"""A small BERT and WordPiece tokenizer for the phantom world, built offline and cached on disk.

No pretrained weights can be downloaded where the phantom default runs, so the default text tower is
a randomly initialised BERT with a tokenizer trained on phantom reports. It is saved with
`save_pretrained` and loaded back through `AutoModel.from_pretrained`, like any real checkpoint.
"""

from __future__ import annotations

import shutil
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

from ..data.dataset_format import config_hash
from ..phantom.corpus import PHANTOM_VERSION
from ..phantom.report_writer import write_report
from ..phantom.scene import sample_scene
from ..phantom.vocabulary import FINDING_KEYS
from .text_encoder import TextEncoder

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TOKENIZER_VERSION = "counted-wordpiece-v1"  # part of the cache key: bump when the vocabulary rule changes


@dataclass(frozen=True)
class PhantomTextEncoderSpec:
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 256
    vocab_size: int = 1000
    max_position: int = 256
    n_reports: int = 3000  # phantom reports the tokenizer is trained on
    seed: int = 0

    @property
    def hash(self) -> str:
        return config_hash({"version": PHANTOM_VERSION, "tokenizer": TOKENIZER_VERSION, **asdict(self)})


def phantom_report_texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng([seed, 99])
    texts = []
    for _ in range(n):
        k = int(rng.integers(0, 4))
        scene = sample_scene(rng, rng.choice(FINDING_KEYS, size=k, replace=False))
        r = write_report(scene, rng)
        texts.append(f"{r.findings} {r.impression}")
    return texts


def wordpiece_vocab(texts: list[str], vocab_size: int) -> dict[str, int]:
    """A WordPiece vocabulary fixed by the texts alone: the special tokens, every character (alone and
    as a `##` continuation), then whole words by frequency (ties alphabetical) up to `vocab_size`.
    (tokenizers' WordPieceTrainer breaks ties between equally frequent merges differently in every
    process, so the same seed gave different token ids, and different training, in a fresh cache.)"""
    normalizer, pre = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    words = Counter(w for t in texts for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(t)))
    chars = sorted({c for w in words for c in w})
    tokens = [*SPECIAL, *chars, *(f"##{c}" for c in chars)]
    room = max(vocab_size - len(tokens), 0)
    tokens += [w for w, _ in sorted(words.items(), key=lambda kv: (-kv[1], kv[0])) if len(w) > 1][:room]
    return {t: i for i, t in enumerate(dict.fromkeys(tokens))}


def train_wordpiece(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    return wordpiece_tokenizer(wordpiece_vocab(texts, vocab_size))


def wordpiece_tokenizer(vocab: dict[str, int], pre=None) -> PreTrainedTokenizerFast:
    """A BERT-style WordPiece tokenizer (lowercasing, [CLS] ... [SEP]) over `vocab`; `pre`: how texts
    split into words (default: BERT's, at whitespace and every punctuation mark)."""
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre or pre_tokenizers.BertPreTokenizer()
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def build_phantom_text_encoder(spec: PhantomTextEncoderSpec, target: Path) -> Path:
    tokenizer = train_wordpiece(phantom_report_texts(spec.n_reports, spec.seed), spec.vocab_size)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        intermediate_size=spec.intermediate_size,
        max_position_embeddings=spec.max_position,
    )
    with torch.random.fork_rng():  # built on first use: must not move the caller's random stream
        torch.manual_seed(spec.seed)
        model = BertModel(config)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    tokenizer.save_pretrained(tmp)
    model.save_pretrained(tmp)
    try:
        tmp.rename(target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # built concurrently by another job: identical
    return target


def ensure_phantom_text_encoder(spec: PhantomTextEncoderSpec, cache_dir: str | Path) -> Path:
    target = Path(cache_dir) / "models" / f"phantom_bert-{spec.hash}"
    if not (target / "config.json").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        build_phantom_text_encoder(spec, target)
    return target


def phantom_text_encoder(
    cache_dir: str | Path, seed: int, phantom: dict, pool: str, freeze_layers: int, max_length: int
) -> TextEncoder:
    """The text tower of `text_encoder=phantom_bert`: the cached phantom BERT of `phantom` (its
    PhantomTextEncoderSpec fields) and `seed`, built on first use."""
    try:
        spec = PhantomTextEncoderSpec(**phantom, seed=seed)
    except TypeError as e:
        raise ValueError(
            f"text_encoder.phantom: {e} (allowed: {sorted(PhantomTextEncoderSpec.__dataclass_fields__)})"
        ) from e
    path = ensure_phantom_text_encoder(spec, Path(cache_dir).expanduser().resolve())
    return TextEncoder(str(path), pool=pool, freeze_layers=freeze_layers, max_length=max_length)
