"""Partially synthetic datasets (Table 4b): real image + synthetic report, synthetic image + real report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from syncxr import dataset_dirs
from syncxr.config import build
from syncxr.data.dataset_format import INFO, MANIFEST, read_dataset
from syncxr.data.mixing import load_table
from syncxr.dataset_dirs import build_dataset_dir
from syncxr.entities.lexicon_ner import LexiconNER
from syncxr.generation.partial_dataset import PartialSettings, build_partial_dataset
from syncxr.phantom.vocabulary import phantom_lexicon
from tests.helpers import REAL_DIR_CORPUS, compose_train

NER = LexiconNER(phantom_lexicon())
REAL = REAL_DIR_CORPUS  # conftest's `real_dir` corpus
COMMON = {
    "builder": "partial",
    "real": REAL,
    "ner": {"_target_": "syncxr.entities.lexicon_ner.phantom_lexicon_ner", "name": "lexicon"},
    "seed": 0,
    "max_attempts": 3,
    "shard_size": 64,
}
ORACLE = {
    "_target_": "syncxr.reports.oracle_i2r.OracleRadiologist",
    "name": "oracle",
    "backend": "oracle",
    "miss_rate": 0.1,
    "false_positive_rate": 0.02,
    "negation_rate": 0.5,
}
SYN_REPORT = {**COMMON, "kind": "real_image_syn_report", "i2r": ORACLE}
SYN_IMAGE = {
    **COMMON,
    "kind": "syn_image_real_report",
    "imagegen": {
        "_target_": "syncxr.images.phantom_t2i.PhantomT2I",
        "name": "phantom",
        "backend": "phantom",
        "image_size": 64,
    },
}


def partial_settings(kind: str, **kw) -> PartialSettings:
    return PartialSettings(kind, **{"seed": 0, "max_attempts": 3, "shard_size": 256, **kw})


def _gray(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"))


def test_syn_report_set_keeps_the_real_images_and_writes_new_reports(cache_dir, real_dir):
    out = build_dataset_dir(SYN_REPORT, cache_dir, "data.syn")
    df, info = read_dataset(out)
    real = load_table(real_dir, split=None).set_index("id")
    assert len(df) == len(real) == info["counts"]["real_rows"] == info["counts"]["rows"]
    assert (df["source"] == "real_image+syn_report").all() and (df["i2r"] == "oracle").all()
    for row in df.itertuples():
        assert (out / row.image).read_bytes() == Path(real.loc[row.real_id, "path"]).read_bytes()
    assert (df["split"].to_numpy() == real.loc[df["real_id"], "split"].to_numpy()).all()
    assert (df["labels"].map(list) == real.loc[df["real_id"], "labels"].map(list).to_numpy()).all()
    new_reports = df["findings"].to_numpy() != real.loc[df["real_id"], "findings"].to_numpy()
    assert new_reports.mean() > 0.9  # fresh wording (an empty chest can come out the same)
    assert all(r.entities.tolist() == NER.extract(f"{r.findings} {r.impression}") for r in df.head(20).itertuples())
    assert info["backend"]["oracle_missed"] > 0 and info["config"]["i2r"] == ORACLE


def test_syn_image_set_keeps_the_real_reports_and_draws_new_images(cache_dir, real_dir):
    out = build_dataset_dir(SYN_IMAGE, cache_dir, "data.syn")
    df, info = read_dataset(out)
    real = load_table(real_dir, split=None).set_index("id")
    assert len(df) == len(real) and info["counts"]["failed"] == {}
    assert (df["source"] == "syn_image+real_report").all() and (df["imagegen"] == "phantom").all()
    for col in ("findings", "impression", "split"):
        assert (df[col].to_numpy() == real.loc[df["real_id"], col].to_numpy()).all()
    for row in df.head(20).itertuples():
        new, old = _gray(out / row.image), _gray(real.loc[row.real_id, "path"])
        assert new.shape == old.shape and np.abs(new.astype(int) - old.astype(int)).mean() > 2
    # Seeds derive from (seed, real row, attempt): distinct per row, recorded per row.
    assert df["seed"].is_unique and (df["attempts"] == 1).all()


def test_a_built_set_is_reused_and_a_changed_backend_gets_its_own(cache_dir, monkeypatch):
    first = build_dataset_dir(SYN_REPORT, cache_dir, "data.syn")
    mtime = (first / MANIFEST).stat().st_mtime_ns

    def no_backend(*_, **__):
        raise AssertionError("a cached dataset must not load its backend again")

    monkeypatch.setattr(dataset_dirs, "build", no_backend)
    assert build_dataset_dir(SYN_REPORT, cache_dir, "data.syn") == first
    assert (first / MANIFEST).stat().st_mtime_ns == mtime
    other = {**SYN_REPORT, "i2r": {**ORACLE, "miss_rate": 0.5}}
    with pytest.raises(AssertionError, match="must not load"):
        build_dataset_dir(other, cache_dir, "data.syn")  # another config: another dataset to build


def _tiny_real(directory: Path, n: int = 6, broken: tuple[int, ...] = ()) -> Path:
    """A small real dataset in the syncxr format; rows in `broken` have an unreadable or missing image."""
    (directory / "images").mkdir(parents=True)
    rows = []
    for i in range(n):
        name = f"images/r{i}.png"
        if i in broken:
            if i % 2 == 0:
                (directory / name).write_bytes(b"not a png")
        else:
            Image.fromarray(np.full((16, 16), 20 * i, np.uint8)).save(directory / name)
        rows.append(
            {
                "id": f"r{i}",
                "image": name,
                "findings": f"Finding {i}.",
                "impression": f"Nodule {i}.",
                "entities": [{"name": "nodule", "type": "ABNORMALITY"}],
                "source": "real",
                "split": "train",
                "labels": ["nodule"],
            }
        )
    pd.DataFrame(rows).to_parquet(directory / MANIFEST)
    (directory / INFO).write_text(json.dumps({"name": "tiny", "hash": "abc"}))
    return directory


class ScriptedDescriber:
    """Answers by real row (the seed encodes it): 'ok', 'retry' (fails on the first try), 'gibberish', 'none'."""

    name = "scripted"
    reads_labels = False

    def __init__(self, plan: dict[int, str]):
        self.plan, self.calls = plan, []

    def describe(self, images, seeds):
        self.calls += list(seeds)
        out = []
        for s in seeds:
            position, attempt = divmod(s, 101)
            kind = self.plan.get(position, "ok")
            ok = kind == "ok" or (kind == "retry" and attempt > 0)
            out.append(
                f"FINDINGS: Row {position}.\nIMPRESSION: Nodule." if ok else None if kind == "none" else "lorem ipsum"
            )
        return out

    def counters(self):
        return {}


def test_every_failed_real_row_is_counted_by_reason(tmp_path):
    real = _tiny_real(tmp_path / "real", n=6, broken=(0, 1))
    describer = ScriptedDescriber({2: "retry", 3: "gibberish", 4: "none"})
    out = build_partial_dataset(
        real,
        tmp_path / "out",
        partial_settings("real_image_syn_report", max_attempts=2, shard_size=4),
        describer,
        NER,
        {},
    )
    df, info = read_dataset(out)
    assert df["real_id"].tolist() == ["r2", "r5"] and df["attempts"].tolist() == [2, 1]
    assert info["counts"]["failed"] == {"unreadable_image": 2, "no_sections": 1, "no_answer": 1}
    assert info["counts"]["rows"] + sum(info["counts"]["failed"].values()) == info["counts"]["real_rows"] == 6
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert sorted(r["real_id"] for r in rejects) == ["r0", "r1", "r3", "r4"]
    assert not (tmp_path / "out.work").exists()


def test_nothing_usable_fails_with_the_counts(tmp_path):
    real = _tiny_real(tmp_path / "real", n=3)
    with pytest.raises(ValueError, match="none of the 3 real rows.*no_sections"):
        build_partial_dataset(
            real,
            tmp_path / "out",
            partial_settings("real_image_syn_report", max_attempts=1),
            ScriptedDescriber(dict.fromkeys(range(3), "gibberish")),
            NER,
            {},
        )


class BlankT2I:
    """Draws a blank (constant) image for the report of row 1, a usable one for the others."""

    name = "blank"

    def __init__(self):
        self.prompts = []

    def generate(self, prompts, seeds):
        self.prompts += prompts
        return [np.zeros((16, 16), np.uint8) if "Nodule 1." in p else np.eye(16, dtype=np.uint8) * 255 for p in prompts]

    def counters(self):
        return {}


def test_blank_images_are_retried_then_counted(tmp_path):
    real = _tiny_real(tmp_path / "real", n=3)
    df = pd.read_parquet(real / MANIFEST)
    df.loc[2, "impression"] = None  # drawn from its FINDINGS instead
    df.to_parquet(real / MANIFEST)
    t2i = BlankT2I()
    out = build_partial_dataset(
        real, tmp_path / "out", partial_settings("syn_image_real_report", max_attempts=2), t2i, NER, {}
    )
    got, info = read_dataset(out)
    assert got["real_id"].tolist() == ["r0", "r2"] and got["impression"].tolist() == ["Nodule 0.", ""]
    assert t2i.prompts == ["Nodule 0.", "Nodule 1.", "Finding 2.", "Nodule 1."]  # the blank one is tried again
    assert info["counts"]["failed"] == {"invalid_image": 1} and info["counters"]["t2i_tries"] == 4


class Killed(Exception):
    pass


class DiesAfter(ScriptedDescriber):
    def __init__(self, n_calls: int):
        super().__init__({})
        self.left = n_calls

    def describe(self, images, seeds):
        if self.left == 0:
            raise Killed
        self.left -= 1
        return super().describe(images, seeds)


def test_a_killed_build_resumes_at_the_first_missing_shard(tmp_path):
    real = _tiny_real(tmp_path / "real", n=10)
    settings = partial_settings("real_image_syn_report", shard_size=4)
    with pytest.raises(Killed):
        build_partial_dataset(real, tmp_path / "out", settings, DiesAfter(2), NER, {})
    assert sorted(p.name for p in (tmp_path / "out.work" / "shards").glob("shard_*")) == [
        "shard_00000.json",
        "shard_00001.json",
    ]
    again = ScriptedDescriber({})
    out = build_partial_dataset(real, tmp_path / "out", settings, again, NER, {})
    assert again.calls == [8 * 101, 9 * 101]  # only the rows of the missing shard
    whole = build_partial_dataset(real, tmp_path / "whole", settings, ScriptedDescriber({}), NER, {})
    pd.testing.assert_frame_equal(read_dataset(out)[0], read_dataset(whole)[0])


def test_labels_reading_oracle_needs_a_labels_column(tmp_path):
    real = _tiny_real(tmp_path / "real", n=2)
    pd.read_parquet(real / MANIFEST).drop(columns="labels").to_parquet(real / MANIFEST)
    with pytest.raises(ValueError, match="labels"):
        build_partial_dataset(
            real, tmp_path / "out", partial_settings("real_image_syn_report"), build(ORACLE, "i2r"), NER, {}
        )


def test_configs_compose_as_data_choices_over_the_real_corpus():
    real_cfg = compose_train(["data=real"]).data.real
    a = compose_train(["data=real_image_syn_report"]).data
    b = compose_train(["data=syn_image_real_report", "imagegen=randomized"]).data
    assert a.name == "real_image_syn_report" and a.real is None and a.syn.builder == "partial"
    assert a.syn.real == real_cfg and b.syn.real == real_cfg  # the same real rows as data=real
    assert a.syn.i2r.backend == "oracle" and b.syn.imagegen.backend == "randomized"
    swapped = compose_train(
        ["data=real_image_syn_report", "i2r@data.syn.i2r=transformers", "data.syn.i2r.path=/models/x"]
    ).data.syn.i2r
    assert swapped.backend == "transformers" and swapped.path == "/models/x"


def test_bad_specs_fail_naming_the_key(cache_dir):
    with pytest.raises(ValueError, match=r"data.syn: unknown key\(s\) \['colour'\]"):
        build_dataset_dir({**SYN_REPORT, "colour": "red"}, cache_dir, "data.syn")
    with pytest.raises(ValueError, match="data.syn.kind"):
        build_dataset_dir({**SYN_REPORT, "kind": "both"}, cache_dir, "data.syn")
    with pytest.raises(ValueError, match="data.syn.i2r: no _target_"):
        build_dataset_dir({**SYN_REPORT, "i2r": {"backend": "psychic"}}, cache_dir, "data.syn")
    with pytest.raises(ValueError, match=r"data.syn.i2r._target_: no class or function 'syncxr.psychic.Oracle'"):
        build_dataset_dir({**SYN_REPORT, "i2r": {"_target_": "syncxr.psychic.Oracle"}}, cache_dir, "data.syn")
    with pytest.raises(TypeError, match=r"data.syn.i2r \(syncxr.reports.oracle_i2r.OracleRadiologist\): .*colour"):
        build_dataset_dir({**SYN_REPORT, "i2r": {**ORACLE, "colour": "red"}}, cache_dir, "data.syn")


class Short(ScriptedDescriber):
    def describe(self, images, seeds):
        return super().describe(images, seeds)[:1]


def test_a_backend_answering_too_few_outputs_fails_loudly(tmp_path):
    real = _tiny_real(tmp_path / "real", n=3)
    with pytest.raises(ValueError, match="'scripted' returned 1 outputs for 3 inputs"):
        build_partial_dataset(real, tmp_path / "out", partial_settings("real_image_syn_report"), Short({}), NER, {})


def test_syn_image_set_from_a_tiny_diffusers_model(tmp_path, tiny_sd_path):
    real = _tiny_real(tmp_path / "real", n=3)
    imagegen = {
        "_target_": "syncxr.images.diffusers_t2i.DiffusersT2I",
        "name": "tiny_sd",
        "backend": "diffusers",
        "path": tiny_sd_path,
        "guidance_scale": 4.0,
        "num_inference_steps": 2,
        "batch_size": 2,
        "height": 32,
        "width": 32,
        "fp16": False,
    }
    spec = {**SYN_IMAGE, "real": {"builder": "path", "path": str(real)}, "imagegen": imagegen}
    out = build_dataset_dir(spec, tmp_path / "cache", "data.syn")
    df, info = read_dataset(out)
    assert df["real_id"].tolist() == ["r0", "r1", "r2"] and (df["imagegen"] == "diffusers").all()
    assert all(_gray(out / p).shape == (32, 32) for p in df["image"])
    assert info["real"]["hash"] == "abc" and info["counters"]["t2i_tries"] == 3
