"""How often an in-process LLM's text changes with the batch it lands in (issue 22, item 4).

  python bench/llm_batch_invariance.py [--path /models/llm] [--n 200] [--tokens 32] [--dtype auto]

Each text is drawn from its own request's seed (syncxr.reports.row_sampling), so batch size 1 and 8
should give the same texts; what can still differ is the model's float rounding of the logits (other
batch shapes, other padding, other kernels), which flips a draw at a near-tie. Reported: the share of
texts that differ, and the largest logit difference of one forward pass between a prompt alone and
the same prompt left-padded in a batch of 8. Without --path, a random Llama (--hidden, --layers) with
a byte-level BPE tokenizer trained here on the prompts; with --path, any causal LM with a chat
template (a learned phantom LM, or a real checkpoint on a GPU with --dtype bfloat16).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from syncxr.phantom.vocabulary import ANATOMY, DISEASE, LOBES, ZONES
from syncxr.reports.requests import ReportRequest
from syncxr.reports.transformers_llm import TransformersLLM

FINDINGS = ("pleural effusion", "pneumothorax", "cardiomegaly", "edema", "consolidation", "atelectasis")
CHAT = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def requests(n: int, seed: int = 0) -> list[ReportRequest]:
    """n FINDINGS requests of 1 to 5 entities (prompts of different lengths), seeds 1000 + i."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        ents = [{"name": str(f), "type": DISEASE} for f in rng.choice(FINDINGS, rng.integers(1, 4), replace=False)]
        ents += [
            {"name": str(a), "type": ANATOMY} for a in rng.choice(LOBES + ZONES, rng.integers(0, 3), replace=False)
        ]
        out.append(ReportRequest(f"s{i}", "findings", ents, seed=1000 + i))
    return out


def random_llama(path: Path, reqs: list[ReportRequest], hidden: int, layers: int) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=2000, special_tokens=["<unk>", "<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator([m["content"] for r in reqs for m in r.messages()], trainer)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    hf.chat_template = CHAT
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(hf),
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 64),
        num_key_value_heads=max(1, hidden // 64),
        bos_token_id=hf.bos_token_id,
        eos_token_id=hf.eos_token_id,
    )
    LlamaForCausalLM(cfg).save_pretrained(path)
    hf.save_pretrained(path)
    return path


@torch.no_grad()
def logit_gap(llm: TransformersLLM, reqs: list[ReportRequest]) -> float:
    """Largest |logit| difference at the next token: each prompt alone vs in its left-padded batch of 8."""
    prompts = [
        llm.tokenizer.apply_chat_template(r.messages(), tokenize=False, add_generation_prompt=True) for r in reqs
    ]
    worst = 0.0
    for i in range(0, len(prompts), 8):
        batch = prompts[i : i + 8]
        enc = llm.tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(llm.device)
        together = llm.model(**enc).logits[:, -1].float()
        for j, p in enumerate(batch):
            one = llm.tokenizer([p], return_tensors="pt", add_special_tokens=False).to(llm.device)
            worst = max(worst, float((llm.model(**one).logits[0, -1].float() - together[j]).abs().max()))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--path", help="a causal LM with a chat template (default: a random Llama built here)")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--top_p", type=float, default=0.95)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--out", help="write the figures here (JSON)")
    args = ap.parse_args()
    reqs = requests(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.path or str(random_llama(Path(tmp), reqs, args.hidden, args.layers))
        kw = {"max_new_tokens": args.tokens, "temperature": args.temperature, "top_p": args.top_p, "dtype": args.dtype}
        texts, seconds = {}, {}
        for b in (1, 8):
            llm = TransformersLLM(path, batch_size=b, **kw)
            start = time.perf_counter()
            texts[b] = llm.generate(reqs)
            seconds[b] = time.perf_counter() - start
        differ = sum(a != b for a, b in zip(texts[1], texts[8]))
        figures = {
            "model": args.path or f"random llama hidden={args.hidden} layers={args.layers}",
            "device": llm.device,
            "dtype": str(llm.model.dtype),
            "texts": args.n,
            "tokens_per_text": args.tokens,
            "texts_differ_batch_1_vs_8": differ,
            "differ_rate": differ / args.n,
            "distinct_texts": len(set(texts[1])),
            "max_logit_diff_alone_vs_batched": logit_gap(llm, reqs),
            "seconds": seconds,
            "torch_threads": torch.get_num_threads(),
        }
    print(json.dumps(figures, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
