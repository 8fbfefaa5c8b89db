"""A tiny paper-mode sweep end to end on the CPU: experiment=syncxr_paper with every published
backend swapped for a tiny one of the same kind (a token-classification NER, a chat LLM, a Stable
Diffusion pipeline, an OpenAI-compatible vision chat server as the MLLM, a Dinov2 as RAD-DINO), the
real corpus curated by that MLLM, the synthetic images checked against its rejects, tiny training,
and eval=paper on the phantom twins: it runs to a report.md holding the paper-shaped tables."""

from __future__ import annotations

import base64
import hashlib
import io
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from syncxr.data.dataset_format import read_dataset
from syncxr.dataset_dirs import build_dataset_dir
from tests.helpers import chexpert_twin, compose_train, run_cli, small_twins
from tests.reports.local_http import LocalChatServer, chat_reply
from tests.tiny_models import tiny_llm, tiny_ner

pytestmark = pytest.mark.slow

# The scripted NER tags two common report words, so the corpus's entity vocabulary is exactly one
# finding-type and one anatomy entity; the scripted LLM writes a text naming exactly those two.
NER_SCRIPT = {"is": "B-ABNORMALITY", "the": "B-ANATOMY"}
LLM_SCRIPT = "The| finding| is| here|."
CORPUS = {"n": 100, "image_size": 64, "low_quality_rate": 0.1, "wrong_view_rate": 0.05, "unpaired_rate": 0.03}


def _key(image: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


class MllmServer(LocalChatServer):
    """Answers NO to all six questions for the images in `bad` (the corpus's planted defects), YES
    otherwise, finding each image by its pixels."""

    def __init__(self, bad: set[str]):
        self.bad, self.asked = bad, 0
        super().__init__(self.respond)

    def respond(self, body):
        url = body["messages"][-1]["content"][0]["image_url"]["url"]
        image = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("L"))
        self.asked += 1
        return 200, chat_reply("No." if _key(image) in self.bad else "Yes.")


def paper_overrides(tmp_path, server, tiny_text_path, tiny_sd_path, tiny_dino_path) -> list[str]:
    ner = tiny_ner(tmp_path / "ner", NER_SCRIPT)
    llm = tiny_llm(tmp_path / "llm", scripted=LLM_SCRIPT)
    corpus = [f"corpus.{k}={v}" for k, v in CORPUS.items()]
    real = [f"phantom.n={CORPUS['n']}", f"phantom.image_size={CORPUS['image_size']}"] + [
        f"real_corpus.{k}={v}" for k, v in CORPUS.items() if k.endswith("rate")
    ]
    return [
        "experiment=syncxr_paper",
        # The real corpus and the report corpus: the phantom one instead of MIMIC-CXR (the same dataset).
        "dataset@real_corpus=phantom_real",
        *real,
        "corpus=phantom_real",
        *corpus,
        # Tiny models of the published kinds, where the paper's weights and servers would be.
        f"ner.path={ner}",
        "llm=transformers",
        f"llm.path={llm}",
        "llm.max_new_tokens=8",
        f"imagegen.path={tiny_sd_path}",
        "imagegen.height=32",
        "imagegen.width=32",
        "imagegen.num_inference_steps=2",
        f"curation.judge.client.base_url={server.url}",
        f"curation.embedding.path={tiny_dino_path}",
        # The tiny random Dinov2 puts every image within cosine ~0.95 of every other.
        "curation.delta=0.999",
        "curation.real.delta=0.999",
        "generation.n_samples=16",
        "generation.shard_size=16",
        "sampling.k=1",
        "sampling.m=1",
        # Tiny training (the published one is 50 epochs of ResNet-50 at 224 px in bf16).
        "image_encoder=resnet18",
        "image_encoder.random_init=true",  # no ImageNet weights here: random on purpose (paper mode refuses null)
        # The published depth at a quarter of its width: the four fine-tuning and three segmentation
        # sets of eval=paper cost most of this test, and a tenth of the compute still runs each.
        "image_encoder.width=16",
        f"text_encoder.path={tiny_text_path}",
        "text_encoder.freeze_layers=0",
        "model.proj_dim=16",
        "model.proj_hidden=32",
        "loader.image_size=48",
        "loader.batch_size=8",
        "loader.num_workers=0",
        "trainer.max_steps=2",
        "trainer.precision=no",
        # The paper's zero-shot input (resize, then centre crop) at the run's scale, not at 256 -> 224.
        "task.zeroshot_cls.resize=56",
        "task.zeroshot_cls.center_crop=48",
        # eval=paper on small twins with one fine-tuning step per fraction.
        *small_twins(),
        *chexpert_twin(60, 30, 64),
        # One epoch, early stopping on the valid split included, at the run's image size.
        "task.finetune_cls.epochs=1",
        "task.finetune_cls.image_size=null",
        "task.finetune_cls.batch_size=8",
        "task.finetune_seg.epochs=1",
        "task.finetune_seg.batch_size=8",
    ]


def test_a_tiny_paper_mode_sweep_runs_to_the_papers_tables(
    cache_dir, tmp_path, tiny_text_path, tiny_sd_path, tiny_dino_path
):
    spec = {"builder": "phantom", "kind": "real", "seed": 0, **CORPUS}
    corpus_dir = build_dataset_dir(spec, cache_dir, "corpus")
    df, _ = read_dataset(corpus_dir)
    defects = df[df["defect"].isin(["low_quality", "wrong_view"])]
    assert len(defects) > 0
    bad = {_key(np.asarray(Image.open(corpus_dir / p).convert("L"))) for p in defects["image"]}
    server = MllmServer(bad)
    try:
        overrides = paper_overrides(tmp_path, server, tiny_text_path, tiny_sd_path, tiny_dino_path)
        cfg = compose_train(overrides)
        assert (cfg.curation.bad_bank, cfg.curation.drop_if_no, cfg.evaluation.protocol) == (
            "real_rejects",
            "all",
            "paper",
        )
        # Real backends: the dataset is made first (as the training job that misses it says), with
        # the same overrides as the sweep, and found by the sweep's jobs.
        gen = run_cli(overrides, cache_dir, tmp_path, script="generate.py")
        out, _ = gen.communicate(timeout=1800)
        assert gen.returncode == 0, out[-5000:]
        sweep = tmp_path / "sweep"
        proc = run_cli(["-m", "data=syn,mix", *overrides, f"hydra.sweep.dir={sweep}"], cache_dir, tmp_path)
        out, _ = proc.communicate(timeout=1800)
        assert proc.returncode == 0, out[-5000:]
    finally:
        server.close()
    assert server.asked > 0
    # The synthetic set: every row written by the scripted LLM, checked by the NER, drawn by the
    # diffusion pipeline and passed by the MLLM against the corpus's judge rejects.
    made = [
        p.parent
        for p in (cache_dir / "generated").glob("syncxr-*/dataset.json")
        if json.loads(p.read_text())["config"]["llm"]["name"] == "transformers"
    ]
    assert len(made) == 1
    manifest = pd.read_parquet(made[0] / "manifest.parquet")
    assert len(manifest) > 0 and set(manifest["findings"]) == {"The finding is here."}
    assert set(manifest["imagegen"]) == {"diffusers"}
    # Each job evaluated the paper's suite: seven zero-shot sets, three grounding sets, four
    # fine-tuning sets and three segmentation sets at 1/10/100 % of the labels.
    for job in [p.parent for p in sweep.glob("*/metrics.json")]:
        m = json.loads((job / "metrics.json").read_text())
        for ds in ("chexpert", "chestxray14", "padchest_seen", "padchest_unseen", "padchest_rare", "rsna", "siim"):
            assert f"zeroshot_cls/{ds}/auc" in m, ds
        for ds in ("rsna", "siim", "covid_rural"):
            assert f"zeroshot_grounding/{ds}/dice" in m and f"zeroshot_grounding/{ds}/dice_ci_low" in m
            assert all(f"finetune_seg/{ds}/dice_{f}" in m for f in ("1pct", "10pct", "100pct")), ds
        for ds in ("rsna", "siim", "covidx", "chestxray14"):
            assert all(f"finetune_cls/{ds}/auc_{f}" in m for f in ("1pct", "10pct", "100pct")), ds
    assert len(list(sweep.glob("*/metrics.json"))) == 2
    report = (sweep / "report.md").read_text()
    assert "Table 1" in report and "Table 2" in report and "Table 3" in report
    assert "PHANTOM TWINS" in report  # the twins stood in for the benchmarks: said, not hidden
