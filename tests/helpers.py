"""Shared by the tests: composing the entry points' configs and the small recipes they run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

import syncxr.config  # noqa: F401  (registers the run_dirname resolver)

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = ("chexpert", "chestxray14", "padchest", "rsna", "siim", "covidx", "covid_rural")


def chexpert_twin(n_test: int, n_valid: int, image_size: int) -> list[str]:
    """Overrides for a CheXpert twin without a training split (what a training job scores itself on)."""
    return [
        "benchmark.chexpert.twin.n_train=0",
        f"benchmark.chexpert.twin.n_test={n_test}",
        f"benchmark.chexpert.twin.n_valid={n_valid}",
        f"benchmark.chexpert.twin.image_size={image_size}",
    ]


# A run small enough for seconds on 2 cores: tiny images, tiny text tower, tiny test set.
TINY = [
    "phantom.n=96",
    "phantom.image_size=64",
    "generation.n_samples=96",
    "generation.shard_size=96",
    "corpus.n=200",
    "corpus.image_size=64",
    "imagegen.image_size=64",
    "loader.image_size=48",
    "loader.batch_size=16",
    "text_encoder.phantom.hidden_size=32",
    "text_encoder.phantom.num_layers=1",
    "text_encoder.phantom.num_heads=2",
    "text_encoder.phantom.intermediate_size=64",
    "text_encoder.phantom.vocab_size=400",
    *chexpert_twin(60, 40, 64),
    "model.proj_dim=16",
    "model.proj_hidden=32",
    "trainer.max_epochs=3",
    "trainer.log_every=1",
]
# TINY for model=gloria (which has no projection heads).
TINY_GLORIA = [o for o in TINY if not o.startswith("model.proj")] + ["model=gloria"]

# The default recipe itself (96 px, the narrow ResNet-18, 3,000 synthetic pairs, 1,000 steps; a
# couple of minutes on 2 cores), scored on a smaller CheXpert twin: the trained-model tests check
# what a first `python train.py` gives, grounding included (it needs the 96-px maps).
BUDGET = [*chexpert_twin(300, 100, 128)]
# What the BUDGET recipe reaches: mean AUC 0.827 / 0.829 / 0.834 for seeds 0 / 1 / 2 on the 500-image
# default twin (sweeps/README.md); untrained it scores 0.4-0.6. The floor is issue 14's goal for the
# default, with room for the spread of machines (the CI machine's float kernels differ, so training
# takes another path).
BUDGET_MIN_AUC = 0.75
# The phantom CheXpert twin that the BUDGET training run scored itself on.
BUDGET_CHEXPERT = chexpert_twin(300, 100, 128)
SMALL_RETRIEVAL = [
    "task.retrieval.datasets.phantom.dataset.n=60",
    "task.retrieval.datasets.phantom.dataset.image_size=64",
]


def compose_config(name: str, overrides=(), config_dir: Path = REPO / "conf", hydra: bool = False):
    """conf/<name>.yaml (or `config_dir`/<name>.yaml) with `overrides`; `hydra`: with the hydra node."""
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        return compose(config_name=name, overrides=list(overrides), return_hydra_config=hydra)


def compose_train(overrides=()):
    return compose_config("train", overrides)


def small_twins(image_size: int = 64, n_train: int = 60, n_valid: int = 30, n_test: int = 60) -> list[str]:
    """Overrides that shrink every twin (the chexpert one is set separately by the tests)."""
    out = []
    for b in BENCHMARKS:
        out.append(f"benchmark.{b}.twin.image_size={image_size}")
        if b != "chexpert":
            out += [
                f"benchmark.{b}.twin.n_train={n_train}",
                f"benchmark.{b}.twin.n_valid={n_valid}",
                f"benchmark.{b}.twin.n_test={n_test}",
            ]
    return out


def compose_eval(run_dir, overrides=()):
    """evaluate.yaml for `run_dir` with small twins (and a small retrieval set where it runs)."""
    tasks = [o for o in overrides if o.startswith("task=")]
    extra = SMALL_RETRIEVAL if not tasks or "retrieval" in tasks[-1] else []
    return compose_config("evaluate", [f"checkpoint={run_dir}", *small_twins(), *overrides, *extra])


def run_cli(args, cache_dir, out_root, script: str = "train.py", **kw):
    """An entry point as a subprocess with its own cache and output root."""
    env = {**os.environ, "SYNCXR_CACHE": str(cache_dir), "SYNCXR_OUTPUTS": str(out_root)}
    return subprocess.Popen(
        [sys.executable, str(REPO / script), *args],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kw,
    )


def openai_client(url: str, model: str = "m", **kw):
    """An OpenAI-compatible client with the transport settings of conf/llm/base/openai_server.yaml,
    any of them overridden by `kw`."""
    from syncxr.reports.openai_llm import OpenAICompatibleLLM  # noqa: PLC0415

    base = compose_config("train", ["llm=llama31_8b"]).llm
    settings = {
        k: base[k]
        for k in (
            "base_urls",
            "api_key_env",
            "concurrency",
            "timeout_s",
            "max_retries",
            "backoff_s",
            "max_tokens",
            "temperature",
        )
    }
    return OpenAICompatibleLLM(url, model, **{**settings, **kw})


def model_settings(name: str, **kw) -> dict:
    """The constructor arguments conf/model/<name>.yaml gives (its `_target_` and labels aside), with
    `kw` on top: for tests that build a model around encoders of their own."""
    from syncxr.config import LABEL_KEYS, plain  # noqa: PLC0415

    cfg = plain(compose_config("train", [f"model={name}"]).model)
    return {**{k: v for k, v in cfg.items() if k not in ("_target_", *LABEL_KEYS)}, **kw}


def text_encoder(path: str, **kw):
    """A TextEncoder of the checkpoint at `path` with the pooling and length of the phantom default."""
    from syncxr.models.text_encoder import TextEncoder  # noqa: PLC0415

    return TextEncoder(path, **{"pool": "max", "freeze_layers": 0, "max_length": 96, **kw})


def write_undecodable_dicom(path) -> None:
    """A well-formed DICOM file whose pixel data claim JPEG 2000 but are garbage: no decoder can read
    them (pydicom raises RuntimeError), as with a compressed file no installed plugin handles."""
    import pydicom  # noqa: PLC0415
    from pydicom.dataset import FileMetaDataset  # noqa: PLC0415
    from pydicom.encaps import encapsulate  # noqa: PLC0415
    from pydicom.uid import JPEG2000Lossless, SecondaryCaptureImageStorage, generate_uid  # noqa: PLC0415

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    meta.TransferSyntaxUID = JPEG2000Lossless
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 8, 8, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = encapsulate([b"not a JPEG 2000 code stream" * 2])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)


# The spec of conftest's `real_dir` corpus (as a `dataset/phantom_real.yaml` section): tests that
# read or derive from those very rows name it.
REAL_DIR_CORPUS = {
    "builder": "phantom",
    "kind": "real",
    "n": 200,
    "seed": 3,
    "image_size": 64,
    "low_quality_rate": 0.05,
    "wrong_view_rate": 0.05,
    "unpaired_rate": 0.05,
}
