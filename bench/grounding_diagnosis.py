"""Why zero-shot grounding does or does not carry signal: Dice of trained checkpoints on the RSNA,
SIIM and COVID Rural twins against the map's resolution, the map definition, and the two baselines
every grounding score carries (a random map, the floor; the ground-truth mask averaged over the
map's grid, the ceiling at that resolution).

  python bench/grounding_diagnosis.py RUN_DIR [RUN_DIR ...] [--sizes 96 192] [--modes positive contrast] \\
      [--set KEY=VALUE ...]

Each RUN_DIR is a train.py run (ConVIRT maps: region-text cosine of the last stage; GLoRIA maps:
the cosine of each third-stage region with the finding's own words). For each checkpoint, input size
and map mode it runs the grounding task as `evaluate.py task=[zeroshot_grounding]` would, with the
same twins, and prints one row per twin: the map grid, Dice with its bootstrap interval, the random
and oracle Dice.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from hydra import compose, initialize_config_dir

from syncxr.eval.evaluation_job import run_evaluation

REPO = Path(__file__).resolve().parents[1]
TWINS = ("rsna", "siim", "covid_rural")


def grounding_metrics(run_dir: str, size: int, mode: str, extra: list[str], out: Path) -> dict:
    overrides = [
        f"checkpoint='{run_dir}'",
        "task=[zeroshot_grounding]",
        f"task.zeroshot_grounding.image_size={size}",
        f"task.zeroshot_grounding.map={mode}",
        "task.zeroshot_grounding.mask_size=128",
        *extra,
    ]
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="evaluate", overrides=overrides)
    return run_evaluation(cfg, out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="train.py run directories")
    ap.add_argument("--sizes", nargs="+", type=int, default=[96], help="grounding input sides")
    ap.add_argument(
        "--modes", nargs="+", default=["positive"], help="map modes (positive | contrast | occlusion | gradcam)"
    )
    ap.add_argument(
        "--set",
        dest="overrides",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="further evaluate.py overrides, e.g. task.zeroshot_grounding.gradcam_layer=layer4",
    )
    args = ap.parse_args()
    print(
        f"{'checkpoint':28s} {'size':>4s} {'mode':8s} {'twin':12s} {'grid':>5s} {'dice':>6s} "
        f"{'95% CI':>13s} {'random':>6s} {'oracle':>6s} {'- random':>8s}"
    )
    for run in args.runs:
        for size in args.sizes:
            for mode in args.modes:
                with tempfile.TemporaryDirectory() as tmp:
                    m = grounding_metrics(run, size, mode, args.overrides, Path(tmp))
                    details = (Path(tmp) / "evaluation.json").read_text()
                notes = json.loads(details)["details"]["zeroshot_grounding"]
                for twin in TWINS:
                    g = f"zeroshot_grounding/{twin}"
                    grid = "x".join(str(v) for v in notes[twin]["map_shape"])
                    print(
                        f"{Path(run).name[-28:]:28s} {size:4d} {mode:8s} {twin:12s} {grid:>5s} {m[f'{g}/dice']:6.3f} "
                        f"[{m[f'{g}/dice_ci_low']:.3f},{m[f'{g}/dice_ci_high']:.3f}] {m[f'{g}/random_dice']:6.3f} "
                        f"{m[f'{g}/oracle_dice']:6.3f} {m[f'{g}/dice'] - m[f'{g}/random_dice']:+8.3f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
