"""A chat tokenizer trained here for the phantom report LMs: a case-keeping WordPiece vocabulary
fixed by the texts alone (so every process builds the same ids), with a chat template, saved as a
PreTrainedTokenizerFast that `AutoTokenizer.from_pretrained` loads like any instruction model's."""

from __future__ import annotations

from collections import Counter

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
ROLES = ("system", "user", "assistant")
ROLE_TOKENS = tuple(f"<|{r}|>" for r in ROLES)
SPECIAL = (PAD, UNK, BOS, EOS, *ROLE_TOKENS)
# Words split at white space, then every punctuation mark but the hyphen is a token of its own: a
# hyphenated entity ("ill-defined opacity") must decode as written, or the NER would miss it.
_PUNCTUATION = Regex(r"[^\w\s-]")


def pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(_PUNCTUATION, "isolated")])


# Each turn: its role token, its text, then the end-of-sequence token (the answer's stop token);
# the generation prompt opens the assistant's turn. Unknown roles are refused by the template.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('unknown chat role ' + m['role']) }}{% endif %}"
    "<|{{ m['role'] }}|> {{ m['content'] }} {{ eos_token }} {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def word_vocab(texts: list[str], vocab_size: int) -> dict[str, int]:
    """A case-keeping WordPiece vocabulary fixed by the texts alone: the special tokens, every
    character (alone and as a `##` continuation, so no word is ever unknown), then whole words by
    frequency, ties alphabetical, up to `vocab_size` (as phantom_text_encoder.wordpiece_vocab, whose
    docstring says why tokenizers' trainers were avoided: their tie-breaking differs per process)."""
    pre = pre_tokenizer()
    words = Counter(w for t in texts for w, _ in pre.pre_tokenize_str(t))
    chars = sorted({c for w in words for c in w})
    tokens = [*SPECIAL, *chars, *(f"##{c}" for c in chars)]
    room = max(vocab_size - len(tokens), 0)
    tokens += [w for w, _ in sorted(words.items(), key=lambda kv: (-kv[1], kv[0])) if len(w) > 1][:room]
    return {t: i for i, t in enumerate(dict.fromkeys(tokens))}


def train_chat_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """The tokenizer of `texts` (prompts and answers): words and punctuation are tokens, a word
    outside the vocabulary is spelled in characters, and decoding rejoins punctuation to its word."""
    tok = Tokenizer(models.WordPiece(word_vocab(texts, vocab_size), unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizer()
    tok.decoder = decoders.WordPiece(cleanup=True)  # "lobe ." -> "lobe."
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        unk_token=UNK,
        bos_token=BOS,
        eos_token=EOS,
        additional_special_tokens=list(ROLE_TOKENS),
    )
    hf.chat_template = CHAT_TEMPLATE
    return hf
