"""Tiny models built offline, saved with save_pretrained, for the real backends' code paths.

Random weights say nothing checkable, so the LLM and the NER can be *scripted*: their layers are
zeroed (each position's hidden state is then its own token's embedding), chosen tokens get
orthonormal embeddings, and the head maps each of them to a chosen output. A scripted LLM writes one
fixed text after any prompt; a scripted NER labels chosen word pieces with chosen BIO tags.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

TEXTS = [
    "There is a small pleural effusion in the right lower lobe.",
    "No pneumothorax.",
    "Cardiomegaly with mild pulmonary edema.",
    "Nodule in the left upper lobe.",
    "FINDINGS: the lungs are clear. IMPRESSION: normal chest radiograph.",
] * 20
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
RATE_TYPES = ("ABNORMALITY", "NON-ABNORMALITY", "DISEASE", "NON-DISEASE", "ANATOMY")
NER_LABELS = ["O"] + [f"{p}-{t}" for t in RATE_TYPES for p in "BI"]
# Words a scripted NER knows but labels O (any other word is [UNK], also O).
NER_FILLER = ["no", "there", "is", "a", "small", "in", "the", "with", "and", "of", "mild", ".", ","]
# What the session's scripted models (tests/conftest.py) say: multi-piece entities (B- then I-, a word
# split into pieces), and pieces that only continue an entity (I- alone).
NER_SCRIPT = {
    "pleural": "B-ABNORMALITY",
    "effusion": "I-ABNORMALITY",
    "pneumo": "B-ABNORMALITY",
    "##thorax": "I-ABNORMALITY",
    "right": "B-ANATOMY",
    "lower": "I-ANATOMY",
    "lobe": "I-ANATOMY",
    "cardiomegaly": "B-DISEASE",
    "edema": "B-NON-DISEASE",
}
LLM_SCRIPT = "Cardiomegaly| is| present."


def script_decoder(decoder, lm_head, chain: list[int], strength: float = 100.0) -> None:
    """Makes a decoder-only LM (its `decoder` stack and `lm_head`) emit chain[1:] one token at a time
    once it has read chain[0], whatever came before, greedy or sampled: attention and MLP outputs
    are zeroed so the last hidden state is the current token's embedding (through the final norm),
    and the head maps each token's embedding to the next token of the chain (its logit `strength` x
    the hidden state's norm: at 100 the chain is certain, at ~1 a sampled answer often leaves it)."""
    for layer in decoder.layers:
        layer.self_attn.o_proj.weight.data.zero_()
        layer.mlp.down_proj.weight.data.zero_()
    emb, head = decoder.embed_tokens.weight.data, lm_head.weight.data
    basis = torch.linalg.qr(torch.randn(emb.shape[1], emb.shape[1]))[0]  # orthonormal directions
    head.mul_(0.01)
    for j, (tok, nxt) in enumerate(zip(chain, chain[1:])):
        emb[tok] = basis[j]
        head[nxt] = strength * basis[j]


def tiny_llm(path: Path, scripted: str | None = None, strength: float = 100.0) -> Path:
    """A tiny Llama chat model and tokenizer at `path`; `scripted`: its only answer (pieces separated
    by "|", each added to the vocabulary as one token; `strength`: see script_decoder), random
    weights otherwise."""
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    pieces = scripted.split("|") if scripted else []
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(
        TEXTS,
        trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tok.decoder = decoders.ByteLevel()
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    hf.chat_template = CHAT_TEMPLATE
    hf.add_tokens(pieces)
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(hf),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=hf.bos_token_id,
        eos_token_id=hf.eos_token_id,
        pad_token_id=hf.pad_token_id,
    )
    model = LlamaForCausalLM(cfg)
    if pieces:
        prompt = hf.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False, add_generation_prompt=True)
        with torch.no_grad():
            script_decoder(
                model.model,
                model.lm_head,
                [hf(prompt, add_special_tokens=False)["input_ids"][-1]]
                + hf.convert_tokens_to_ids(pieces)
                + [hf.eos_token_id],
                strength,
            )
    model.save_pretrained(path)
    hf.save_pretrained(path)
    return path


def tiny_ner(path: Path, script: dict[str, str]) -> Path:
    """A tiny BERT token classifier with RaTE's BIO labels at `path` that tags each word piece of
    `script` (piece -> label, e.g. {"pleural": "B-ABNORMALITY", "effusion": "I-ABNORMALITY",
    "##thorax": ...}) with its label, whatever its context, and every other piece O. Its WordPiece
    vocabulary is the script's pieces and NER_FILLER (lower-cased; other words are [UNK])."""
    from transformers import BertConfig, BertForTokenClassification, PreTrainedTokenizerFast

    unknown = set(script.values()) - set(NER_LABELS)
    if unknown:
        raise ValueError(f"tiny_ner: labels {sorted(unknown)} are not among {NER_LABELS}")
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {t: i for i, t in enumerate(specials + NER_FILLER + [p for p in script if p not in NER_FILLER])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tok.decoder = decoders.WordPiece(prefix="##")
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    torch.manual_seed(0)
    d = 64
    cfg = BertConfig(
        vocab_size=len(vocab),
        hidden_size=d,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=len(NER_LABELS),
        id2label=dict(enumerate(NER_LABELS)),
        label2id={label: i for i, label in enumerate(NER_LABELS)},
    )
    model = BertForTokenClassification(cfg)
    with torch.no_grad():
        emb = model.bert.embeddings
        emb.position_embeddings.weight.zero_()
        emb.token_type_embeddings.weight.zero_()
        for layer in model.bert.encoder.layer:  # post-norm residual blocks: LayerNorm(x + 0) = x
            for dense in (layer.attention.output.dense, layer.output.dense):
                dense.weight.zero_()
                dense.bias.zero_()
        # Orthonormal zero-mean directions (LayerNorm only rescales them): one per scripted piece,
        # one shared by every other token.
        basis = torch.linalg.qr(torch.cat([torch.ones(d, 1), torch.randn(d, d - 1)], 1))[0][:, 1:].T
        if len(script) + 1 > len(basis):
            raise ValueError(f"tiny_ner: at most {len(basis) - 1} scripted pieces")
        emb.word_embeddings.weight[:] = basis[len(script)]
        head = model.classifier
        head.weight.zero_()
        head.bias.zero_()
        head.bias[0] = 1.0  # O, unless a scripted piece's label scores higher
        for j, (piece, label) in enumerate(script.items()):
            emb.word_embeddings.weight[vocab[piece]] = basis[j]
            head.weight[NER_LABELS.index(label)] += 10.0 / d**0.5 * basis[j]
    model.save_pretrained(path)
    hf.save_pretrained(path)
    return path


def tiny_stable_diffusion(path: Path) -> Path:
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    tok = Tokenizer(models.BPE(unk_token="<|endoftext|>", end_of_word_suffix="</w>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(
        TEXTS,
        trainers.BpeTrainer(
            vocab_size=200, end_of_word_suffix="</w>", special_tokens=["<|startoftext|>", "<|endoftext|>"]
        ),
    )
    tok_dir = path / "_bpe"
    tok_dir.mkdir(parents=True)
    tok.model.save(str(tok_dir))
    clip_tok = CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"), model_max_length=77)
    torch.manual_seed(0)
    text = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(clip_tok),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=1,
            num_attention_heads=4,
            max_position_embeddings=77,
            eos_token_id=clip_tok.eos_token_id,
        )
    )
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=32,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(32, 64),
        norm_num_groups=32,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
    )
    sched = PNDMScheduler(skip_prk_steps=True, steps_offset=1)
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text,
        tokenizer=clip_tok,
        unet=unet,
        scheduler=sched,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(path)
    return path


def tiny_dinov2(path: Path) -> Path:
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    Dinov2Model(
        Dinov2Config(
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            image_size=32,
            patch_size=8,
        )
    ).save_pretrained(path)
    BitImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(path)
    return path
