"""Published values only beside the configuration the paper published (issue 21, item 10): ablation
rows of a paper-mode sweep carry none, real rows say they are quoted from MAVL, and
paper.reuse_published_real=true makes a data=real job quote instead of train."""

import json

import pytest

from syncxr.config import ConfigError
from syncxr.results.jobs import find_jobs
from syncxr.results.provenance import QUOTED, quote_published_real, quotes_published_real, unpublished, write_quoted
from syncxr.results.sweep import write_report
from tests.helpers import run_cli
from tests.results.fake_sweep import write_job, write_sweep


def _rows(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


@pytest.mark.parametrize(
    ("axis", "published", "others"),
    [
        ("generation.entity_ratio", "1.0", ("0.25", "0.5")),
        ("llm", "llama31_70b", ("llama31_8b", "meditron3_70b")),
        ("imagegen", "roentgen", ("cxr_irgen", "llm_cxr")),
        ("image_encoder", "resnet50", ("swin_t",)),
    ],
)
def test_only_the_published_configuration_carries_published_values(tmp_path, axis, published, others):
    values = (published, *others)
    sweep = write_sweep(tmp_path / "s", {v: 0.5 + 0.05 * i for i, v in enumerate(values)}, axis=axis, recipe="paper")
    text = write_report(sweep, n_boot=20)[1].read_text()
    table1 = text[text.index("## Table") : text.index("Keys:")]
    rows = _rows(table1, "| convirt ")
    assert len(rows) == len(values)
    for row in rows:
        value = row.split("|")[3].strip()
        if value == published:
            assert "(paper 59.49)" in row, row  # Table 1's SynCXR value for ConVIRT on CheXpert
        else:
            assert "(paper" not in row, row  # the paper never published this row
    assert "no other row does" in text


def test_mixing_shares_are_not_the_published_mix(tmp_path):
    sweep = tmp_path / "s"
    for data, share, signal in (("mix", "null", 0.7), ("mix", "0.5", 0.7), ("real", "null", 0.5)):
        for seed in (0, 1):
            over = [f"data={data}", f"data.syn_fraction={share}", "model=gloria", f"seed={seed}"]
            write_job(sweep, over, {"chexpert": signal}, recipe="paper")
    text = write_report(sweep, n_boot=20)[1].read_text()
    (mix_all,) = _rows(text, "| gloria  | mix    | null ")
    (mix_half,) = _rows(text, "| gloria  | mix    | 0.5 ")
    (real,) = _rows(text, "| gloria  | real   | null ")
    assert "(paper 72.32)" in mix_all and "(paper" not in mix_half
    assert "(paper 54.84 ‡)" in real  # quoted by the paper from MAVL
    assert "quoted by the paper (§4.2) from MAVL (Phan et al. 2024b)" in text


def test_unpublished_names_what_differs(tmp_path):
    d = write_job(tmp_path, ["data=syn", "model=convirt", "llm=meditron3_8b", "seed=0"], {"chexpert": 0.6})
    (job,) = find_jobs(tmp_path)
    assert unpublished(job) == ["recipe=phantom", "llm=meditron3_8b"]
    hydra = d / ".hydra" / "hydra.yaml"
    hydra.write_text(hydra.read_text().replace("recipe: phantom", "recipe: paper"))
    assert unpublished(find_jobs(tmp_path)[0]) == ["llm=meditron3_8b"]


def test_reuse_published_real_quotes_real_jobs_in_paper_mode_only(tmp_path):
    paper = {"recipe": "paper", "model": "convirt", "image_encoder": "resnet50"}
    assert not quotes_published_real(False, {**paper, "data": "real"})
    assert quotes_published_real(True, {**paper, "data": "real"})
    assert not quotes_published_real(True, {**paper, "data": "syn"})
    with pytest.raises(ConfigError, match=r"paper mode only .*recipe=phantom"):
        quotes_published_real(True, {**paper, "data": "real", "recipe": "phantom"})
    with pytest.raises(ConfigError, match="no real-data row for model=convirt image_encoder=swin_t"):
        quotes_published_real(True, {**paper, "data": "real", "image_encoder": "swin_t"})
    # A dry run prices the quoted job at no training; a real run writes QUOTED and trains nothing.
    assert quote_published_real(True, {**paper, "data": "real"}, tmp_path / "dry", 0, True)
    assert json.loads((tmp_path / "dry" / "cost.json").read_text())["train_gpu_h"] == 0.0
    assert not (tmp_path / "dry" / QUOTED).exists()
    # A sweep whose real jobs quoted: their rows show the published value alone, the others measure.
    sweep = tmp_path / "s"
    for data, signal in (("real", None), ("syn", 0.7)):
        for seed in (0, 1):
            over = [f"data={data}", "model=convirt", f"seed={seed}"]
            d = write_job(sweep, over, signal and {"chexpert": signal}, recipe="paper")
            if signal is None:
                write_quoted(d, "convirt")
    assert (sweep / "data=real,model=convirt,seed=0" / QUOTED).is_file()
    text = write_report(sweep, n_boot=20)[1].read_text()
    (real,) = _rows(text, "| convirt | real ")
    cells = [c.strip() for c in real.strip("|").split("|")]
    assert cells[2:4] == ["quoted 52.10 ‡", "quoted 35.61 ‡"] and cells[-1] == "0"  # CheXpert AUC, F1; no seeds
    assert cells[-3:-1] == ["quoted 64.25 ‡", "quoted 42.87 ‡"]  # SIIM: every Table 1 column
    (syn,) = _rows(text, "| convirt | syn ")
    assert "(paper 59.49)" in syn and "(paper 56.07)" not in syn  # ChestX-ray14: not measured, nothing beside it
    assert "4 jobs, 2 ok, 2 quoted, 0 failed." in text
    assert "2 data=real job(s) did not train" in text and "Failed jobs" not in text


@pytest.mark.slow
def test_a_paper_mode_sweep_of_quoted_real_jobs_trains_nothing_and_reports_table1(tmp_path):
    sweep = tmp_path / "sweep"
    over = ["-m", "experiment=syncxr_paper", "data=real", "model=convirt,gloria", "paper.reuse_published_real=true"]
    proc = run_cli([*over, f"hydra.sweep.dir={sweep}"], tmp_path / "cache", tmp_path)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    assert len(list(sweep.glob(f"*/{QUOTED}"))) == 2 and not list(sweep.glob("*/metrics.json"))
    text = (sweep / "report.md").read_text()
    assert len(_rows(text, "| gloria  | real ")) == 1, text
    (gloria,) = _rows(text, "| gloria  | real ")
    assert "quoted 54.84 ‡" in gloria and "quoted 40.39 ‡" in gloria  # CheXpert AUC, SIIM F1 (Table 1)
    assert "PHANTOM TWINS" not in text and "†" not in text  # nothing was evaluated
    phantom = run_cli(["data=real", "paper.reuse_published_real=true"], tmp_path / "cache", tmp_path)
    out, _ = phantom.communicate(timeout=600)
    assert phantom.returncode == 2 and "paper.reuse_published_real=true applies to paper mode only" in out
