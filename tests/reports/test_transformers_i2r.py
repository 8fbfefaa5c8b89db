"""The transformers image-to-report backend with tiny LLaVA models built in the test."""

from pathlib import Path

import numpy as np
import pytest

from syncxr.data.mixing import load_table
from syncxr.entities.lexicon_ner import LexiconNER
from syncxr.generation.partial_rows import describe_real_images
from syncxr.phantom.vocabulary import phantom_lexicon
from syncxr.reports.transformers_i2r import TransformersI2R
from tests.reports.tiny_vlm import tiny_llava

SCRIPT = "FINDINGS:| There is a small pleural effusion.| IMPRESSION:| Pleural effusion."
IMAGES = [np.random.default_rng(i).integers(0, 256, (40, 30 + i), dtype=np.uint8) for i in range(3)]


@pytest.fixture(scope="module")
def gibberish_path(tmp_path_factory) -> str:
    return str(tiny_llava(tmp_path_factory.mktemp("tiny_llava")))


@pytest.fixture(scope="module")
def scripted_path(tmp_path_factory) -> str:
    return str(tiny_llava(tmp_path_factory.mktemp("tiny_llava_scripted"), scripted=SCRIPT))


def test_batched_seeded_reports_from_a_tiny_model(gibberish_path):
    i2r = TransformersI2R(gibberish_path, batch_size=2, max_new_tokens=8, temperature=0.7, top_p=0.95, dtype="auto")
    out = i2r.describe(IMAGES, [1, 2, 3])
    assert len(out) == 3 and all(isinstance(t, str) and t for t in out)
    assert i2r.processor.tokenizer.padding_side == "left"
    assert i2r.describe(IMAGES, [1, 2, 3]) == out  # the same seeds sample the same reports
    assert i2r.describe(IMAGES, [7, 8, 9]) != out  # a retry with new seeds samples new ones
    assert i2r.counters() == {"i2r_calls": 9}
    with pytest.raises(ValueError, match="seeds"):
        i2r.describe(IMAGES, [1])


def test_an_images_report_depends_on_its_own_seed_not_on_its_batch(gibberish_path):
    # The images differ in size, so a batch pads them differently than one at a time.
    seeds = [11, 12, 13]
    alone = TransformersI2R(gibberish_path, batch_size=1, max_new_tokens=8, temperature=0.7, top_p=0.95, dtype="auto")
    batched = TransformersI2R(gibberish_path, batch_size=3, max_new_tokens=8, temperature=0.7, top_p=0.95, dtype="auto")
    reports = alone.describe(IMAGES, seeds)
    assert batched.describe(IMAGES, seeds) == reports
    assert batched.describe(IMAGES[::-1], seeds[::-1]) == reports[::-1]  # nor on its place in the batch
    assert len(set(alone.describe([IMAGES[0]] * 3, seeds))) > 1  # one image, three seeds: sampled apart


def test_a_model_that_answers_a_report_gives_both_sections(scripted_path):
    i2r = TransformersI2R(scripted_path, batch_size=2, max_new_tokens=8, temperature=0.0, top_p=0.95, dtype="auto")
    assert i2r.describe(IMAGES, [0, 0, 0]) == [SCRIPT.replace("|", "")] * 3


def _real_rows(real_dir: Path, n: int) -> list[dict]:
    table = load_table(real_dir, split=None).head(n)
    return table.assign(position=range(n)).to_dict("records")


def test_gibberish_is_a_counted_failed_row_not_a_crash(gibberish_path, real_dir, tmp_path):
    i2r = TransformersI2R(gibberish_path, batch_size=4, max_new_tokens=6, temperature=0.7, top_p=0.95, dtype="auto")
    out = describe_real_images(
        _real_rows(real_dir, 3),
        i2r,
        LexiconNER(phantom_lexicon()),
        seed=0,
        max_attempts=2,
        images_dir=tmp_path,
        id_prefix="synrep",
        source="x",
    )
    assert out.rows == [] and out.failed == {"no_sections": 3}
    assert out.counters["i2r_tries"] == 6 and len(out.rejects) == 3


def test_a_report_answering_model_makes_rows_with_the_real_image(scripted_path, real_dir, tmp_path):
    i2r = TransformersI2R(scripted_path, batch_size=2, max_new_tokens=8, temperature=0.7, top_p=0.95, dtype="auto")
    rows = _real_rows(real_dir, 3)
    out = describe_real_images(
        rows,
        i2r,
        LexiconNER(phantom_lexicon()),
        seed=0,
        max_attempts=1,
        images_dir=tmp_path,
        id_prefix="synrep",
        source="real_image+syn_report",
    )
    assert not out.failed and [r["real_id"] for r in out.rows] == [r["id"] for r in rows]
    first = out.rows[0]
    assert (first["findings"], first["impression"]) == ("There is a small pleural effusion.", "Pleural effusion.")
    assert {"name": "pleural effusion", "type": "ABNORMALITY"} in first["entities"]
    assert (tmp_path / Path(first["image"]).name).read_bytes() == Path(rows[0]["path"]).read_bytes()


def test_an_i2r_config_section_builds_a_dataset_with_this_backend(scripted_path, tmp_path):
    from syncxr.data.dataset_format import read_dataset
    from syncxr.dataset_dirs import build_dataset_dir
    from tests.generation.test_partial_dataset import SYN_REPORT, _tiny_real

    real = _tiny_real(tmp_path / "real", n=3)
    i2r = {
        "_target_": "syncxr.reports.transformers_i2r.TransformersI2R",
        "name": "tiny",
        "backend": "transformers",
        "path": scripted_path,
        "batch_size": 2,
        "max_new_tokens": 8,
        "temperature": 0.0,
        "top_p": 1.0,
        "dtype": "float32",
    }
    spec = {**SYN_REPORT, "real": {"builder": "path", "path": str(real)}, "i2r": i2r}
    df, info = read_dataset(build_dataset_dir(spec, tmp_path / "cache", "data.syn"))
    assert df["real_id"].tolist() == ["r0", "r1", "r2"] and (df["i2r"] == "transformers").all()
    assert (df["impression"] == "Pleural effusion.").all()
    assert info["counters"]["i2r_tries"] == info["backend"]["i2r_calls"] == 3
