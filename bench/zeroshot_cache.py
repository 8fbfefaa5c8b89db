"""Zero-shot re-scoring with the image-embedding cache vs scoring from scratch, side by side.

    .venv/bin/python bench/zeroshot_cache.py [--checkpoint RUN_DIR] [--n-test 500] [--n-valid 200]

Scores the phantom CheXpert-5 twin zero-shot (test split, thresholds from the valid split) twice:
without the cache (every image decoded and encoded, as a run with `embedding_cache=null`), and
re-scoring with a new prompt ensemble once the cache is warm (only the prompts are encoded). Without
--checkpoint a randomly initialised model of the default training config is saved to a temporary
run dir (the speed does not depend on the weights). Prints both times and their ratio (goal >= 20x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from accelerate import Accelerator  # noqa: E402
from bench_common import REPO, default_config  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from syncxr.benchmarks.chexpert import CHEXPERT5, CheXpert, read_chexpert_split  # noqa: E402
from syncxr.data.transforms import eval_transform  # noqa: E402
from syncxr.eval.checkpoint import load_trained, weights_fingerprint  # noqa: E402
from syncxr.eval.embeddings import EmbeddingCache  # noqa: E402
from syncxr.eval.zeroshot import prompt_embeddings, score_zeroshot  # noqa: E402
from syncxr.models.build import build_model  # noqa: E402

PROMPTS = [
    (["{}.", "there is {}.", "{} is present."], ["no {}.", "there is no {}.", "no evidence of {}."]),
    (["{} is seen.", "findings of {}."], ["{} is not seen.", "no findings of {}."]),
    (["there is {} in the chest."], ["the chest shows no {}."]),
]


def random_run_dir(cache_dir: Path, target: Path) -> Path:
    """A run dir (resolved_config.yaml + model.safetensors) of an untrained default model."""
    cfg = default_config([f"paths.cache_dir={cache_dir}"])
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.image_encoder, cfg.text_encoder)
    target.mkdir(parents=True, exist_ok=True)
    (target / "resolved_config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, target / "model.safetensors")
    return target


def score(model, tokenizer, cache: EmbeddingCache, test, val, transform, accelerator, prompts, max_length):
    emb, ok = cache.features(model, test, transform, "global", accelerator, batch_size=128)
    vemb, vok = cache.features(model, val, transform, "global", accelerator, batch_size=128)
    pos, neg = prompt_embeddings(
        model, tokenizer, [c.lower() for c in CHEXPERT5], prompts[0], prompts[1], max_length, accelerator
    )
    metrics, _, _ = score_zeroshot(
        emb[ok], test.labels[ok], pos, neg, list(CHEXPERT5), "val", vemb[vok], val.labels[vok]
    )
    return metrics["auc"]


def main(argv=None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", help="a train.py run dir (default: an untrained default model)")
    ap.add_argument("--n-test", type=int, default=500)
    ap.add_argument("--n-valid", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3, help="timed re-scorings (median reported)")
    args = ap.parse_args(argv)
    cache_dir = Path(os.environ.get("SYNCXR_CACHE", REPO / ".cache" / "syncxr")).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(args.checkpoint) if args.checkpoint else random_run_dir(cache_dir, Path(tmp) / "run")
        model, tokenizer, cfg = load_trained(run_dir, cache_dir)
        accelerator = Accelerator(cpu=not torch.cuda.is_available())
        model.to(accelerator.device)
        root = CheXpert(twin=dict(n_test=args.n_test, n_valid=args.n_valid, seed=1000)).root_dir(cache_dir)
        test = read_chexpert_split(root, "test.csv", list(CHEXPERT5))
        val = read_chexpert_split(root, "valid.csv", list(CHEXPERT5))
        transform = eval_transform(int(cfg.loader.image_size))
        max_length = int(cfg.text_encoder.max_length)
        run = lambda cache, p: score(model, tokenizer, cache, test, val, transform, accelerator, p, max_length)  # noqa: E731

        run(EmbeddingCache(None, "warm-up"), PROMPTS[0])  # first-call costs (kernels, allocator) out of the timing
        t = time.perf_counter()
        auc_cold = run(EmbeddingCache(None, "none"), PROMPTS[0])
        t_nocache = time.perf_counter() - t
        cache = EmbeddingCache(Path(tmp) / "eval_cache", weights_fingerprint(run_dir))
        run(cache, PROMPTS[0])  # fills the cache
        times, aucs = [], []
        for i in range(args.repeats):
            t = time.perf_counter()
            aucs.append(run(cache, PROMPTS[1 + i % (len(PROMPTS) - 1)]))
            times.append(time.perf_counter() - t)
        t_cached = statistics.median(times)
        assert cache.misses == 2, f"re-scoring re-encoded images ({cache.misses} misses)"
    images = len(test) + len(val)
    print(f"device: {accelerator.device}; {images} images at {transform.size} px; model {cfg.image_encoder.name}")
    print(f"zero-shot scoring without cache: {t_nocache:.3f} s (AUC {auc_cold:.3f})")
    print(
        f"re-scoring new prompts, cached:  {t_cached:.4f} s (median of {args.repeats}; AUCs "
        + ", ".join(f"{a:.3f}" for a in aucs)
        + ")"
    )
    ratio = t_nocache / t_cached
    print(f"ratio: {ratio:.1f}x (goal >= 20x)")
    return ratio


if __name__ == "__main__":
    sys.exit(0 if main() > 0 else 1)
