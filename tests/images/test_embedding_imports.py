"""The phantom image embedder (phantom generation's curation) loads without transformers, which only
the learned embedder needs and which costs seconds to import."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import REPO


def test_the_phantom_embedder_loads_without_transformers():
    probe = (
        "import json, sys\n"
        "from syncxr.images.embedding import PhantomEmbedder\n"
        "import syncxr.generation.generation_job\n"
        "print(json.dumps('transformers' in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) is False
