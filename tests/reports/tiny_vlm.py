"""A tiny LLaVA (CLIP vision tower + Llama text model) with a processor and chat template, built offline.

Random weights answer gibberish. `scripted` makes the model answer one fixed text whatever the
image: each piece of the text is one added token, scripted as tests/tiny_models.py's script_decoder
does it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from tests.tiny_models import script_decoder

TEXTS = [
    "FINDINGS: There is a small pleural effusion. IMPRESSION: Effusion.",
    "No pneumothorax.",
    "Cardiomegaly with mild pulmonary edema.",
] * 20
# Renders content parts: an image placeholder becomes <image>, which the processor expands.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}{% endif %}{% endfor %}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def _tokenizer(pieces: list[str]):
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(
        TEXTS,
        trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=["<unk>", "<s>", "</s>", "<pad>", "<image>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tok.decoder = decoders.ByteLevel()
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
    )
    hf.add_tokens(pieces)
    return hf


def tiny_llava(path: Path, scripted: str | None = None) -> Path:
    """Saves a tiny image-text-to-text model and its processor at `path`; `scripted`: its only answer
    (pieces separated by "|", e.g. "FINDINGS:| Clear lungs.| IMPRESSION:| Normal.")."""
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    pieces = scripted.split("|") if scripted else []
    tok = _tokenizer(pieces)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    # 16 px / 8 px patches = 4 image tokens; "default" drops the CLS feature the vision tower adds.
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tok,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )
    torch.manual_seed(0)
    cfg = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=16,
            patch_size=8,
        ),
        text_config=LlamaConfig(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=512,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        ),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        image_seq_length=4,
    )
    model = LlavaForConditionalGeneration(cfg)
    if pieces:
        prompt = processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "x"}]}],
            add_generation_prompt=True,
        )
        with torch.no_grad():
            script_decoder(
                model.model.language_model,
                model.lm_head,
                [tok(prompt)["input_ids"][-1]] + tok.convert_tokens_to_ids(pieces) + [tok.eos_token_id],
            )
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
