"""The allowed values of string-valued config keys live in syncxr.config_choices, which imports
nothing: the entry points refuse a bad config before torch is imported, and a module that maps each
choice to something (a transform, a file suffix) names the same choices."""

from __future__ import annotations

import json
import subprocess
import sys

from syncxr import config_choices
from syncxr.data.mimic_cxr import IMAGE_SUFFIX
from syncxr.data.transforms import PIXEL_NORMS
from syncxr.eval.finetune import AUGMENTATIONS
from tests.helpers import REPO


def test_the_mappings_name_the_checked_choices():
    assert tuple(PIXEL_NORMS) == config_choices.PIXEL_NORM_NAMES
    assert tuple(IMAGE_SUFFIX) == config_choices.IMAGE_FORMATS
    assert tuple(AUGMENTATIONS) == config_choices.AUGMENTATION_NAMES


def test_an_entry_point_refuses_a_bad_config_without_importing_torch():
    """train.py's checks run before the training code is imported: the refusal loads no torch (nor
    pandas), which is what made it cost seconds."""
    probe = (
        "import json, runpy, sys\n"
        "sys.argv = ['train.py', 'trainer.max_steps=-5']\n"
        "try:\n"
        "    runpy.run_path('train.py', run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    loaded = sorted(m for m in ('torch', 'pandas') if m in sys.modules)\n"
        "    print(json.dumps({'code': e.code, 'loaded': loaded}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"code": 2, "loaded": []}, (out, proc.stderr[-2000:])
    assert "trainer.max_steps" in proc.stderr
