"""The six quality questions of SynCXR's MLLM filter, asked of each image.

`HeuristicJudge` answers them for the phantom world from image statistics; `OpenAIVisionJudge`
asks any OpenAI-compatible vision endpoint (e.g. a vLLM-served MLLM).
"""

from __future__ import annotations

import logging
import re
import zlib
from collections import Counter

import numpy as np
from scipy.ndimage import gaussian_filter, sobel, zoom

from ..data.image_io import png_data_url
from ..reports.backend_failure import BackendFailure, is_backend_failure

log = logging.getLogger(__name__)

# The six checks by key (the order of a verdict's answers) with the phantom world's short wording; a
# judge that asks a model takes its own wording per key from config (conf/curation/paper.yaml: the
# paper's §3.1 queries, verbatim).
QUESTIONS = {
    "chest_xray": "Is this image a chest X-ray?",
    "human": "Is this a radiograph of a human?",
    "frontal": "Is this a frontal (PA or AP) view?",
    "quality": "Is the image quality acceptable (exposure and contrast)?",
    "artifacts": "Is the image free of artifacts and noise?",
    "fidelity": "Is the image of high fidelity (sharp, realistic anatomy)?",
}


class HeuristicJudge:
    """Image statistics that separate good phantom radiographs from the defects the phantom plants."""

    name = "heuristic"

    def ask(self, image: np.ndarray) -> dict[str, bool]:
        x = image.astype(np.float32) / 255.0
        x = zoom(x, (128 / x.shape[0], 128 / x.shape[1]), order=1)  # thresholds are set at 128 px
        body = x[16:112, 16:112]
        # A frontal chest has a bright spine between two dark lung fields at mid height.
        rows = x[38:76]
        spine_vs_lungs = float(rows[:, 58:70].mean() - max(rows[:, 28:44].mean(), rows[:, 84:100].mean()))
        smooth = gaussian_filter(x, 1.0)
        noise = float(np.median(np.abs(x - smooth)))
        spread = float(np.percentile(smooth, 95) - np.percentile(smooth, 5)) + 1e-3
        edges = float(np.percentile(np.hypot(sobel(smooth, 0), sobel(smooth, 1)), 99)) / spread
        return {
            "chest_xray": float(body.std()) > 0.08,
            "human": float(body.mean()) > 0.12,
            "frontal": spine_vs_lungs > 0.1,
            "quality": 0.15 < float(x.mean()) < 0.6 and float((x > 0.97).mean()) < 0.2,
            "artifacts": noise < 0.06,
            "fidelity": edges > 1.0,  # blurred images have soft organ borders
        }

    def judge(self, images: list[np.ndarray]) -> list[dict[str, bool]]:
        return [self.ask(im) for im in images]

    def counters(self) -> dict:
        return {}  # no transport to count


# A chat model's YES or NO, however formatted: "**Yes**", "Yes.", "yes, it is", "Answer: NO", "`no`".
# Markdown marks, quotes and an "Answer:" label are skipped; the first word must be yes or no.
_ANSWER = re.compile(r"^[\s*_`#>\"'(\[]*(?:answer\s*[:\-]?[\s*_`\"'(\[]*)?(yes|no)\b", re.IGNORECASE)


def parse_yes_no(text: str | None) -> bool | None:
    """True for a yes, False for a no, None for no answer or one that is neither."""
    m = _ANSWER.match(text or "")
    return None if m is None else m.group(1).lower() == "yes"


class OpenAIVisionJudge:
    """Asks each question of an OpenAI-compatible vision chat endpoint, the image first and the
    question's text after it as given (`questions`: one text per key of `QUESTIONS`); expects YES or NO."""

    name = "openai"

    def __init__(self, client, questions: dict[str, str]):
        self.client = client  # an OpenAICompatibleLLM (shares its retries and counters)
        self.questions = {str(k): str(v) for k, v in dict(questions).items()}
        if list(self.questions) != list(QUESTIONS):
            raise ValueError(
                f"curation.judge.questions: needs one text for each of {list(QUESTIONS)}, in that order; "
                f"got {list(self.questions)}"
            )
        empty = [k for k, v in self.questions.items() if not v.strip()]
        if empty:
            raise ValueError(f"curation.judge.questions: empty text for {empty}")
        self.stats: Counter = Counter()

    def judge(self, images: list[np.ndarray]) -> list[dict[str, bool] | BackendFailure]:
        """The six answers per image; a `BackendFailure` for an image whose questions the server
        could not answer (the image is then neither passed nor rejected)."""
        items = []
        for im in images:
            url = png_data_url(im)
            seed = zlib.crc32(im.tobytes())  # the image's own: its answers do not depend on its batch
            for q in self.questions.values():
                msg = [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": q}],
                    }
                ]
                items.append((msg, seed))
        answers = self.client.generate_messages(items)
        out = []
        for i in range(len(images)):
            row = dict(zip(QUESTIONS, answers[i * len(QUESTIONS) : (i + 1) * len(QUESTIONS)]))
            failed = next((a for a in row.values() if is_backend_failure(a)), None)
            if failed is not None:  # the backend failed: not checked, retried by a later run
                out.append(failed)
                continue
            verdict = {}
            for q, a in row.items():
                yes = parse_yes_no(a)
                if yes is None:  # unanswered or neither yes nor no: counts as NO, never passes unchecked
                    self.stats["unanswered" if a is None else "unparsed"] += 1
                    if a is not None and self.stats["unparsed"] <= 3:
                        log.warning("judge: answer %r to %r is neither YES nor NO; counted as NO", a[:80], q)
                else:
                    self.stats["yes" if yes else "no"] += 1
                verdict[q] = bool(yes)
            out.append(verdict)
        return out

    def counters(self) -> dict:
        """Answers by kind (yes, no, unparsed, unanswered) and the client's requests and failures."""
        client = {f"judge_{k.removeprefix('llm_')}": v for k, v in self.client.counters().items()}
        return {**client, **{f"judge_{k}": int(v) for k, v in self.stats.items()}}
