"""Generation config sections -> backends. Heavy backends are imported only when selected."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..entities.lexicon_ner import LexiconNER
from ..phantom.vocabulary import phantom_lexicon
from .pipeline import GenerationSettings

GENERATION_KEYS = ("n_samples", "seed", "entity_ratio", "val_fraction", "shard_size", "max_report_attempts",
                   "max_image_attempts", "llm", "ner", "imagegen", "sampling", "curation", "corpus")
PHANTOM_BACKENDS = {"llm": "template", "imagegen": ("phantom", "randomized")}


def _plain(section):
    return OmegaConf.to_container(section, resolve=True) if isinstance(section, DictConfig) else section


def generation_config(cfg) -> dict:
    """The plain dict of generation keys (from generate.py's root or train.py's `generation`)."""
    missing = [k for k in GENERATION_KEYS if k not in cfg]
    if missing:
        raise ValueError(f"generation config lacks key(s) {missing}")
    return {k: _plain(cfg[k]) for k in GENERATION_KEYS}


def is_phantom(gen: dict) -> bool:
    return gen["llm"]["backend"] == "template" and gen["imagegen"]["backend"] in ("phantom", "randomized") \
        and gen["ner"]["name"] == "lexicon" and gen["curation"]["name"] in ("phantom", "none")


def build_settings(gen: dict) -> GenerationSettings:
    s = gen["sampling"]
    return GenerationSettings(
        n_samples=gen["n_samples"], seed=gen["seed"], entity_ratio=gen["entity_ratio"], sampling=s["name"],
        k=s["k"], m=s["m"], tau_max=s.get("tau_max"), tau_max_slack=s.get("tau_max_slack", 1.5),
        shard_size=gen["shard_size"], max_report_attempts=gen["max_report_attempts"],
        max_image_attempts=gen["max_image_attempts"], val_fraction=gen["val_fraction"])


def build_ner(ner: dict):
    if ner["name"] == "lexicon":
        return LexiconNER(phantom_lexicon())
    if ner["name"] == "transformers":
        from ..entities.transformers_ner import TransformersNER
        return TransformersNER(ner["path"], batch_size=ner.get("batch_size", 32))
    raise ValueError(f"ner.name must be 'lexicon' or 'transformers', got {ner['name']!r}")


def build_llm(llm: dict):
    backend = llm["backend"]
    if backend == "template":
        from ..reports.template_llm import TemplateLLM
        return TemplateLLM(error_rate=llm.get("error_rate", 0.1))
    if backend == "openai":
        from ..reports.openai_llm import OpenAICompatibleLLM
        return OpenAICompatibleLLM(llm["base_url"], llm["model"], api_key=llm.get("api_key"),
                                   concurrency=llm.get("concurrency", 32), timeout_s=llm.get("timeout_s", 60),
                                   max_retries=llm.get("max_retries", 4), max_tokens=llm.get("max_tokens", 256),
                                   temperature=llm.get("temperature", 0.7))
    if backend == "transformers":
        from ..reports.transformers_llm import TransformersLLM
        return TransformersLLM(llm["path"], batch_size=llm.get("batch_size", 8),
                               max_new_tokens=llm.get("max_tokens", 256), temperature=llm.get("temperature", 0.7))
    raise ValueError(f"llm.backend must be template, openai or transformers, got {backend!r}")


def build_t2i(imagegen: dict, ner):
    backend = imagegen["backend"]
    if backend in ("phantom", "randomized"):
        from ..images.phantom_t2i import PhantomT2I
        return PhantomT2I(ner, image_size=imagegen.get("image_size", 128), randomized=backend == "randomized")
    if backend == "diffusers":
        from ..images.diffusers_t2i import DiffusersT2I
        return DiffusersT2I(imagegen["path"], guidance_scale=imagegen.get("guidance_scale", 4.0),
                            num_inference_steps=imagegen.get("num_inference_steps", 50),
                            batch_size=imagegen.get("batch_size", 8), height=imagegen.get("height"),
                            width=imagegen.get("width"), fp16=imagegen.get("fp16", True))
    raise ValueError(f"imagegen.backend must be phantom, randomized or diffusers, got {backend!r}")


def build_judge(judge_cfg: dict):
    """The six-question image judge of a curation config's `judge` section."""
    if judge_cfg["backend"] == "heuristic":
        from ..images.judge import HeuristicJudge
        return HeuristicJudge()
    if judge_cfg["backend"] == "openai":
        from ..images.judge import OpenAIVisionJudge
        from ..reports.openai_llm import OpenAICompatibleLLM
        return OpenAIVisionJudge(OpenAICompatibleLLM(
            judge_cfg["base_url"], judge_cfg["model"], api_key=judge_cfg.get("api_key"),
            concurrency=judge_cfg.get("concurrency", 32), timeout_s=judge_cfg.get("timeout_s", 60),
            max_retries=judge_cfg.get("max_retries", 4), max_tokens=4, temperature=0.0))
    raise ValueError(f"curation.judge.backend must be heuristic or openai, got {judge_cfg['backend']!r}")


def build_embedder(emb_cfg: dict):
    """The image embedding of a curation config's `embedding` section."""
    if emb_cfg["backend"] == "phantom":
        from ..images.embedding import PhantomEmbedder
        return PhantomEmbedder()
    if emb_cfg["backend"] == "transformers":
        from ..images.embedding import HFImageEmbedder
        return HFImageEmbedder(emb_cfg["path"], batch_size=emb_cfg.get("batch_size", 32))
    raise ValueError(f"curation.embedding.backend must be phantom or transformers, got {emb_cfg['backend']!r}")


def build_curator(cur: dict):
    if cur["name"] == "none":
        return None
    from ..images.curation import Curator, load_image_bank, phantom_bad_images
    bank = phantom_bad_images() if cur["bad_bank"] == "phantom" else load_image_bank(cur["bad_bank"])
    return Curator(build_judge(cur["judge"]), build_embedder(cur["embedding"]), bank, delta=cur["delta"])


def corpus_reader(corpus: dict, cache_dir: Path):
    """A callable returning the report texts the vocabulary is built from."""
    def read():
        if corpus["builder"] == "phantom":
            from ..data.mixing import load_table
            from ..entities.long_tail import report_texts
            from ..phantom.corpus import PhantomCorpusSpec, ensure_phantom_corpus
            spec = {k: v for k, v in corpus.items() if k != "builder"}
            t = load_table(ensure_phantom_corpus(PhantomCorpusSpec(**spec), cache_dir), "train")
            return report_texts(t)
        if corpus["builder"] == "file":
            from ..entities.vocabulary import read_report_corpus
            return read_report_corpus(corpus["path"], corpus["text_column"])
        raise ValueError(f"corpus.builder must be 'phantom' or 'file', got {corpus['builder']!r}")
    return read


def generation_command(gen: dict) -> str:
    """The generate.py command that makes the dataset of `gen` (choices and plain keys)."""
    parts = [f"llm={gen['llm']['name']}", f"ner={gen['ner']['name'] if gen['ner']['name'] == 'lexicon' else 'rate_ner'}",
             f"imagegen={gen['imagegen']['name']}", f"sampling={gen['sampling']['name']}",
             f"curation={gen['curation']['name']}"]
    parts += [f"{k}={gen[k]}" for k in ("n_samples", "seed", "entity_ratio")]
    return "python generate.py " + " ".join(parts)


def run_generation(gen: dict, out_dir: Path, cache_dir: Path, progress: bool = True, until: str = "all") -> Path:
    from .pipeline import Generator
    ner = build_ner(gen["ner"])
    gen_obj = Generator(out_dir, build_settings(gen), gen, ner, build_llm(gen["llm"]),
                        build_t2i(gen["imagegen"], ner), build_curator(gen["curation"]),
                        corpus_reader(gen["corpus"], cache_dir), progress=progress)
    return gen_obj.run(until)
