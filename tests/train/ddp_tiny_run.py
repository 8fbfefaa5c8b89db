"""One process of test_checkpoint's two-process run (started by torch.distributed.run):
`ddp_tiny_run.py OUT MAX_STEPS|none RESULT` trains Tiny in OUT; the main process saves the weights."""

import sys
from pathlib import Path

from safetensors.torch import save_file
from torch import distributed as dist

from tests.train.test_checkpoint import run

out, max_steps, result = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
weights, _, _ = run(out, "cosine", max_steps=None if max_steps == "none" else int(max_steps), n=24)
if dist.get_rank() == 0:
    save_file({k: v.contiguous() for k, v in weights.items()}, result)
