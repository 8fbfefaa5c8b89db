"""The paper's tables from fake sweeps: which sections appear, their rows, columns and cells, the
published values and phantom-twin warnings of paper mode, results.csv, and the Figure 3 plot."""

import json

import numpy as np
import pandas as pd

from syncxr.results.plots import axis_figure
from syncxr.results.sweep import write_report
from syncxr.results.tables import HEADLINE, add_headline
from tests.results.fake_sweep import write_sweep

SECTIONS = (
    "## Table 1",
    "## Table 2a",
    "## Table 2b",
    "## Table 3a",
    "## Table 3b",
    "## Table 4a",
    "## Table 4b",
    "## Figure 3",
)


def _sections(text: str) -> set[str]:
    return {s for s in SECTIONS if s in text}


def _metric(sweep, job: str, key: str) -> float:
    return json.loads((sweep / job / "metrics.json").read_text())[key]


def _cell(sweep, jobs: list[str], key: str) -> str:
    v = np.array([_metric(sweep, j, key) for j in jobs]) * 100
    return f"{v.mean():.2f} ± {v.std(ddof=1):.2f}"


def test_paper_mode_shows_published_values_and_flags_phantom_twins(tmp_path):
    sweep = write_sweep(
        tmp_path / "s",
        {"real": 0.3, "syn": 0.6, "mix": 0.8},
        models=("convirt", "gloria"),
        datasets=("chexpert", "rsna"),
        recipe="paper",
        real_benchmarks=("rsna",),
    )
    text = write_report(sweep, n_boot=100)[1].read_text()
    assert (
        "> **WARNING — PHANTOM TWINS, NOT THE PUBLISHED BENCHMARKS:** chexpert was evaluated on phantom twins "
        "(their root unset)."
    ) in text
    header = next(line for line in text.splitlines() if line.startswith("| model"))
    assert "CheXpert AUC †" in header and "| RSNA AUC " in header and "RSNA AUC †" not in header
    syn = [f"data=syn,model=convirt,seed={s}" for s in (0, 1)]
    row = next(line for line in text.splitlines() if line.startswith("| convirt | syn "))
    assert f"| {_cell(sweep, syn, 'zeroshot_cls/chexpert/auc')} (paper 59.49) " in row
    assert f"| {_cell(sweep, syn, 'zeroshot_cls/rsna/f1')} (paper 58.38) " in row
    gloria_mix = next(line for line in text.splitlines() if line.startswith("| gloria  | mix "))
    assert "(paper 72.32)" in gloria_mix and "(paper 51.10)" in gloria_mix


def test_phantom_default_has_no_published_values(tmp_path):
    sweep = write_sweep(tmp_path / "s", {"real": 0.3, "syn": 0.6}, seeds=(0,), datasets=("chexpert", "rsna"))
    text = write_report(sweep, n_boot=100)[1].read_text()
    assert "(paper" not in text and "WARNING" not in text and "†" not in text
    assert "Benchmarks evaluated on their phantom twins: chexpert, rsna." in text
    # One seed: the value alone, no spread.
    value = _metric(sweep, "data=real,model=convirt,seed=0", "zeroshot_cls/chexpert/auc") * 100
    assert next(line for line in text.splitlines() if line.startswith("| convirt | real ")).startswith(
        f"| convirt | real   | {value:.2f} "
    )  # two decimals kept (not re-parsed as a number)
    assert _sections(text) == {"## Table 1"}  # nothing else in the sweep: no empty sections


def test_the_full_paper_suite_fills_tables_1_to_3(tmp_path):
    finetune = {
        f"finetune_{t}/{d}/{m}_{f}": v
        for t, ds, m in (("cls", ("rsna", "covidx"), "auc"), ("seg", ("siim",), "dice"))
        for d in ds
        for f, v in (("1pct", 0.6), ("10pct", 0.7), ("100pct", 0.8))
    }
    sweep = write_sweep(
        tmp_path / "s",
        {"real": 0.3, "syn": 0.6},
        datasets=("chexpert", "padchest_unseen"),
        grounding=("rsna", "covid_rural"),
        extra_metrics={**finetune, "retrieval/syn_test/i2t_r10": 0.4},
    )
    text = write_report(sweep, n_boot=100)[1].read_text()
    assert _sections(text) == {"## Table 1", "## Table 2a", "## Table 2b", "## Table 3a", "## Table 3b"}
    lines = text.splitlines()
    t3a = lines[lines.index(next(x for x in lines if x.startswith("## Table 3a"))) + 2]
    assert [c.strip() for c in t3a.strip("|").split("|")] == [
        "model",
        "data",
        "RSNA AUC 1%",
        "RSNA AUC 10%",
        "RSNA AUC 100%",
        "COVIDx AUC 1%",
        "COVIDx AUC 10%",
        "COVIDx AUC 100%",
        "seeds",
    ]
    t2b = lines[lines.index(next(x for x in lines if x.startswith("## Table 2b"))) + 2]
    assert [c.strip() for c in t2b.strip("|").split("|")] == [
        "model",
        "data",
        "RSNA IoU",
        "RSNA Dice",
        "COVID Rural IoU",
        "COVID Rural Dice",
        "seeds",
    ]
    assert "| convirt | syn    | 60.00 ± 0.00 " in text  # fine-tuning cells: mean ± std over the two seeds
    # Grounding and unseen-disease claims, recomputed from the per-image predictions.
    assert any(
        x.startswith("- convirt, zero-shot grounding, mean IoU over RSNA, COVID Rural: syn > real by +")
        and x.endswith(
            "Paper: syn > real by +1.42 (stated: mean over ConVIRT, GLoRIA and RSNA, COVID Rural, "
            "SIIM). Agrees with the paper."
        )
        for x in lines
    ), text
    assert any(
        x.startswith("- convirt, zero-shot, unseen and rare diseases, mean AUC over PadChest unseen: syn > real")
        for x in lines
    )
    # What no paper table shows is still reported (the random grounding baseline, retrieval).
    other = text[text.index("## Other metrics") :]
    assert "`retrieval/syn_test/i2t_r10`" not in other and "| retrieval/syn_test/i2t_r10 " in other
    assert "| zeroshot_grounding/rsna/random_iou " in other


def test_results_csv_has_every_metric_of_every_job(tmp_path):
    sweep = write_sweep(
        tmp_path / "s",
        {"real": 0.3, "syn": None},
        seeds=(0, 1),
        datasets=("chexpert",),
        recipe="paper",
        extra_metrics={"train/loss": 1.5},
    )
    write_report(sweep, n_boot=100)
    df = pd.read_csv(sweep / "results.csv")
    assert len(df) == 4 and sorted(df["status"]) == ["failed", "failed", "ok", "ok"]
    ok = df[df["status"] == "ok"].set_index("job")
    for job in ok.index:
        metrics = json.loads((sweep / job / "metrics.json").read_text())
        assert {k: ok.loc[job, k] for k in metrics} == metrics
        assert ok.loc[job, HEADLINE] == metrics["zeroshot_cls/chexpert/auc"]
    assert set(df["sweep/data"]) == {"real", "syn"} and set(df["seed"]) == {0, 1}
    assert set(df["recipe"]) == {"paper"} and set(ok["phantom_twins"]) == {"chexpert"}


def test_ablation_studies_get_their_own_tables(tmp_path):
    kinds = {"real": 0.3, "real_image_syn_report": 0.4, "syn_image_real_report": 0.5, "syn": 0.6}
    text = write_report(write_sweep(tmp_path / "b", kinds, seeds=(0,)), n_boot=100)[1].read_text()
    assert _sections(text) == {"## Table 4b"}
    rows = [x.split("|")[2].strip() for x in text.splitlines() if x.startswith("| convirt ")]
    assert rows == ["real", "real_image_syn_report", "syn_image_real_report", "syn"]  # the paper's order
    text = write_report(
        write_sweep(tmp_path / "a", {"balanced": 0.6, "longtail": 0.3}, axis="sampling", seeds=(0,)), n_boot=100
    )[1].read_text()
    assert _sections(text) == {"## Table 4a"} and "| model   | data   | sampling   |" in text
    ratio = write_sweep(
        tmp_path / "r",
        {"0.25": 0.3, "0.5": 0.5, "1.0": 0.6},
        axis="generation.entity_ratio",
        models=("convirt", "gloria"),
    )
    text = write_report(ratio, n_boot=100)[1].read_text()
    assert _sections(text) == {"## Table 1", "## Figure 3"}
    assert "## Figure 3: entity ratio" in text and "![generation_entity_ratio](generation_entity_ratio.png)" in text
    assert (ratio / "generation_entity_ratio.png").is_file() and "## Plots" not in text


def test_figure3_plot_draws_the_mean_per_model_against_the_value(tmp_path):
    ratio = write_sweep(
        tmp_path / "r",
        {"0.25": 0.3, "0.5": 0.5, "1.0": 0.6},
        axis="generation.entity_ratio",
        models=("convirt", "gloria"),
    )
    write_report(ratio, n_boot=50)
    df = add_headline(pd.read_csv(ratio / "results.csv"))
    fig = axis_figure(df, "sweep/generation.entity_ratio", HEADLINE, "AUC")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["convirt", "gloria"]
    assert ax.get_xlabel() == "generation.entity_ratio"
    line = ax.get_lines()[0]  # convirt: x by value, y the mean over seeds in percent
    assert list(line.get_xdata()) == [0.25, 0.5, 1.0]
    expected = [
        np.mean(
            [
                _metric(
                    ratio, f"generation.entity_ratio={r},model=convirt,seed={s},data=syn", "zeroshot_cls/chexpert/auc"
                )
                for s in (0, 1)
            ]
        )
        * 100
        for r in ("0.25", "0.5", "1.0")
    ]
    np.testing.assert_allclose(line.get_ydata(), expected)


def test_a_sweep_where_every_job_failed_lists_them_and_nothing_else(tmp_path):
    sweep = write_sweep(tmp_path / "s", {"real": None, "syn": None}, seeds=(0,))
    text = write_report(sweep, n_boot=10)[1].read_text()
    assert _sections(text) == set() and "claims" not in text
    assert text.split("## Failed jobs")[1].split() == [
        "-",
        "data=real,model=convirt,seed=0",
        "-",
        "data=syn,model=convirt,seed=0",
    ]


def test_table2b_columns_in_the_published_order():
    from syncxr.results.layout import sweep_layout

    # Table 2b's header row: RSNA, Covid-19 Rural, SIIM (issue 21, item 9).
    assert sweep_layout([]).columns["table2b"] == ["rsna", "covid_rural", "siim"]
    assert sweep_layout([]).columns["table2a"] == ["padchest_unseen", "padchest_rare"]  # two unseen sets (§4.1)
