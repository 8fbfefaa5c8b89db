"""The learned phantom text-to-image model: trained on the phantom real corpus, saved as a diffusers
pipeline, loaded by DiffusersT2I (the class RoentGen uses) through DiffusionPipeline.from_pretrained."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from diffusers import DiffusionPipeline

from syncxr.config_validation import config_errors
from syncxr.images.diffusers_t2i import DiffusersT2I
from syncxr.learned.model_cache import built_record
from syncxr.learned.real_corpus import corpus_rows, corpus_spec, load_gray
from syncxr.learned.t2i_quality import CLASSIFIER_SIZE, FindingClassifier, scored_findings
from syncxr.learned.t2i_training import T2ISpec, spec_from_dict
from syncxr.learned.text_to_image import ensure_t2i, phantom_diffusion
from syncxr.phantom.corpus import ensure_phantom_corpus
from tests.helpers import compose_config, compose_train

# 200 pairs with a third held out, so that the val scenes have findings to score.
CORPUS = {"builder": "phantom", "kind": "real", "n": 200, "seed": 5, "image_size": 32, "val_fraction": 0.35}
TINY = {
    "image_size": 16,
    "channels": [8, 16],
    "cross_attention_levels": 1,
    "text_hidden": 16,
    "text_layers": 1,
    "steps": 80,
    "batch_size": 16,
    "lr": 0.003,
}
PROMPTS = ["Moderate pleural effusion.", "Normal chest radiograph.", "Cardiomegaly.", "Right pneumothorax."] * 2


@pytest.fixture(scope="module")
def learned(cache_dir) -> DiffusersT2I:
    ensure_phantom_corpus(corpus_spec(CORPUS), cache_dir, progress=False)
    return phantom_diffusion(
        str(cache_dir), CORPUS, TINY, guidance_scale=3.0, num_inference_steps=4, batch_size=8, image_size=48, fp16=False
    )


@pytest.fixture(scope="module")
def model_dir(learned, cache_dir) -> Path:
    return ensure_t2i(cache_dir, CORPUS, spec_from_dict(TINY))


def test_saved_pipeline_loads_through_diffusers_and_draws_the_asked_size(learned, model_dir):
    assert isinstance(learned, DiffusersT2I)
    assert json.loads((model_dir / "model_index.json").read_text())["_class_name"] == "IFPipeline"
    pipe = DiffusionPipeline.from_pretrained(model_dir)
    assert type(pipe).__name__ == "IFPipeline" and pipe.unet.config.sample_size == 16
    images = learned.generate(PROMPTS[:3], [0, 1, 2])
    assert [im.shape for im in images] == [(48, 48)] * 3 and images[0].dtype == np.uint8
    assert learned.draw == (16, 16)  # drawn at the model's size, upsampled to the dataset's


def test_training_lowers_the_heldout_denoising_loss(model_dir):
    training = built_record(model_dir)["training"]
    # Broken training (no optimiser step, a detached loss, noise the model never sees) stays at init.
    assert training["val_loss"] < 0.8 * training["val_loss_init"], training
    assert training["n_train"] > 0 and training["n_val"] > 0


def test_an_image_depends_on_its_own_seed_not_on_its_batch(model_dir):
    def t2i(batch_size):
        return DiffusersT2I(
            str(model_dir),
            guidance_scale=3.0,
            num_inference_steps=4,
            batch_size=batch_size,
            height=None,
            width=None,
            fp16=False,
        )

    seeds = list(range(10, 18))
    one = np.stack(t2i(1).generate(PROMPTS, seeds)).astype(int)
    eight = np.stack(t2i(8).generate(PROMPTS, seeds)).astype(int)
    # Batched matrix products round differently: measured here, at most 1.3e-3 in [0, 1] before
    # quantisation (0 uint8 levels); a seed per batch would differ by ~100 levels.
    assert np.abs(one - eight).max() <= 2
    again = np.stack(t2i(8).generate(PROMPTS, seeds)).astype(int)
    assert np.array_equal(eight, again)
    other = np.stack(t2i(8).generate(PROMPTS, [s + 100 for s in seeds])).astype(int)
    assert np.abs(other - eight).mean() > 5  # another seed, another image


def test_quality_is_measured_with_and_without_guidance(learned, cache_dir):
    q = learned.quality
    assert q["findings"], q  # the held-out scenes have findings to score
    assert set(q["auc_rendered"]) == {*q["findings"], "macro"} == set(q["auc_guided"]) == set(q["auc_unguided"])
    assert all(0 <= v <= 1 for key in ("auc_rendered", "auc_guided", "auc_unguided") for v in q[key].values())
    assert q["guidance_scale"] == 3.0 and q["num_inference_steps"] == 4 and q["images_per_second"] > 0
    assert DiffusersT2I.quality == {}  # the class default stays empty: real checkpoints measure nothing


def test_the_finding_classifier_separates_rendered_findings(cache_dir):
    corpus = {"builder": "phantom", "kind": "real", "n": 600, "seed": 6, "image_size": 32, "val_fraction": 0.3}
    root, train = corpus_rows(corpus, cache_dir, "train")
    _, val = corpus_rows(corpus, cache_dir, "val")
    train, val = train[train["defect"] == "none"], val[val["defect"] == "none"]
    findings = scored_findings(train, val)
    auc = FindingClassifier(load_gray(root, train, CLASSIFIER_SIZE), train, findings).auc(
        load_gray(root, val, CLASSIFIER_SIZE), val
    )
    # Measured: effusion 0.96, edema 1.0, macro 0.69 over 12 findings (small nodules near 0.5).
    assert auc["pleural_effusion"] > 0.85 and auc["edema"] > 0.85 and auc["macro"] > 0.6, auc


def test_a_second_use_reads_the_cache(learned, cache_dir):
    def models() -> set[str]:  # the session cache is shared: other files' tests may add their own
        return {p.name for p in (Path(cache_dir) / "models").iterdir() if p.name.startswith("phantom_t2i-")}

    before = models()
    again = phantom_diffusion(
        str(cache_dir), CORPUS, TINY, guidance_scale=3.0, num_inference_steps=4, batch_size=8, image_size=48, fp16=False
    )
    assert again.quality == learned.quality
    assert models() == before  # nothing built: the model and its quality record were read back


def test_bad_specs_are_refused_naming_the_key():
    with pytest.raises(ValueError, match="imagegen.model.*widths"):
        spec_from_dict({"widths": [8, 16]})
    with pytest.raises(ValueError, match="image_size 18"):
        T2ISpec(image_size=18, channels=(8, 16, 32))


@pytest.mark.parametrize("preset", ["phantom_diffusion", "phantom_diffusion_weak"])
def test_presets_compose_as_phantom_presets(preset):
    cfg = compose_config("generate", [f"imagegen={preset}"])
    assert config_errors(cfg) == []
    section = cfg.generation.imagegen
    assert section.phantom_world is True and section.corpus.builder == "phantom"
    assert "cache_dir" in section and section.image_size == cfg.phantom.image_size
    spec = spec_from_dict(dict(section.model))
    assert spec.uncond_prob == 0.1 and spec.image_size <= 64
    assert config_errors(compose_train([f"imagegen={preset}", "imagegen.model.lr=-1"]))  # validated


def test_the_weak_preset_is_smaller_and_less_trained():
    better = spec_from_dict(dict(compose_train(["imagegen=phantom_diffusion"]).imagegen.model))
    weak = spec_from_dict(dict(compose_train(["imagegen=phantom_diffusion_weak"]).imagegen.model))
    assert weak.steps < better.steps and sum(weak.channels) < sum(better.channels)
