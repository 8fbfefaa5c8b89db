"""train.py, SIGKILLed just before event EVENT of its SAVE-th checkpoint save (see kill_points).
Usage: python tests/faults/train_killed_in_checkpoint.py SAVE EVENT [train.py overrides ...]"""

import runpy
import sys
from pathlib import Path

from tests.faults.kill_points import KillPoints

TRAIN = str(Path(__file__).resolve().parents[2] / "train.py")
save, event = int(sys.argv[1]), int(sys.argv[2])
KillPoints(save, event).install()
sys.argv = [TRAIN, *sys.argv[3:]]
runpy.run_path(TRAIN, run_name="__main__")
