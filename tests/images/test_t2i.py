import numpy as np
import pytest

from syncxr.entities.lexicon_ner import LexiconNER
from syncxr.images.diffusers_t2i import DiffusersT2I
from syncxr.images.phantom_t2i import PhantomT2I, RandomizedT2I, finding_severities, findings_from_entities
from syncxr.phantom.vocabulary import phantom_lexicon

NER = LexiconNER(phantom_lexicon())


def test_entities_map_to_drawable_findings():
    keys, anatomy = findings_from_entities(
        NER.extract("Pneumonia in the left lower lobe. No pneumothorax. Cardiac enlargement, concerning for infection.")
    )
    assert keys == ["cardiomegaly", "consolidation", "pneumonia"] and anatomy == ["left lower lobe"]
    assert finding_severities(NER.extract("Small pleural effusion. Severe cardiomegaly. New mass.")) == {
        "pleural_effusion": 0,
        "cardiomegaly": 2,
        "mass": None,
    }


def test_phantom_t2i_draws_the_severity_the_impression_names():
    t2i = PhantomT2I(image_size=96)
    seeds = list(range(8))
    small = np.stack(t2i.generate(["Small pleural effusion at the right costophrenic angle."] * 8, seeds))
    large = np.stack(t2i.generate(["Large pleural effusion at the right costophrenic angle."] * 8, seeds))
    assert (large > small + 20).sum() > 8 * 40  # a large effusion whitens much more of the lung base


def test_phantom_t2i_draws_what_the_impression_names():
    t2i = PhantomT2I(image_size=96)
    seeds = list(range(12))
    with_eff = np.stack(t2i.generate(["Large pleural effusion at the right costophrenic angle."] * 12, seeds))
    without = np.stack(t2i.generate(["No pleural effusion."] * 12, seeds))
    # Fluid whitens the right lung base (image left, lower middle).
    region = (slice(55, 68), slice(18, 40))
    assert with_eff[:, region[0], region[1]].mean() > without[:, region[0], region[1]].mean() + 20
    assert np.array_equal(t2i.generate(["Nodule."], [3])[0], t2i.generate(["Nodule."], [3])[0])


def test_randomized_synthesis_widens_appearance():
    base = np.stack(PhantomT2I(64).generate(["Cardiomegaly."] * 16, list(range(16))))
    rnd = np.stack(RandomizedT2I(64).generate(["Cardiomegaly."] * 16, list(range(16))))
    assert rnd.mean(axis=(1, 2)).std() > 1.5 * base.mean(axis=(1, 2)).std()


def test_diffusers_backend_runs_a_tiny_pipeline(tiny_sd_path):
    t2i = DiffusersT2I(
        tiny_sd_path, guidance_scale=4.0, num_inference_steps=2, batch_size=2, height=32, width=32, fp16=False
    )
    a = t2i.generate(["Pleural effusion.", "No pneumothorax.", "Nodule."], [0, 1, 2])
    assert len(a) == 3 and a[0].shape == (32, 32) and a[0].dtype == np.uint8
    b = t2i.generate(["Pleural effusion."], [0])
    assert np.array_equal(a[0], b[0])  # a seed per image: batch composition does not matter


def test_a_checkpoint_naming_code_outside_diffusers_and_transformers_is_refused(tiny_sd_path, tmp_path):
    """model_index.json chooses the classes diffusers imports: a copied checkpoint whose index names
    another module, or a pipeline diffusers does not ship, is refused before anything is imported."""
    import json
    import shutil

    from syncxr.images.diffusers_t2i import DiffusersT2I

    for key, value, match in (
        ("scheduler", ["os", "system"], "component 'scheduler' comes from 'os'"),
        ("_class_name", "EvilPipeline", "_class_name 'EvilPipeline' is not a diffusers pipeline"),
    ):
        bad = tmp_path / key
        shutil.copytree(tiny_sd_path, bad)
        index = json.loads((bad / "model_index.json").read_text())
        (bad / "model_index.json").write_text(json.dumps(index | {key: value}))
        with pytest.raises(ValueError, match=f"model_index.json: {match}"):
            DiffusersT2I(
                str(bad), guidance_scale=1.0, num_inference_steps=1, batch_size=1, height=32, width=32, fp16=False
            )
