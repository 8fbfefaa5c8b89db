"""The paper's MLLM judge (OpenAIVisionJudge) against a chat server in this process, and the curator
of a composed `curation=paper` end to end."""

from __future__ import annotations

import base64
import hashlib
import io
import threading

import numpy as np
import pytest
from PIL import Image

from syncxr.generation.generation_job import build_curator, generation_config
from syncxr.images.judge import QUESTIONS, OpenAIVisionJudge
from syncxr.phantom.renderer import render
from syncxr.phantom.scene import sample_scene
from syncxr.reports.backend_failure import BackendFailure
from tests.helpers import compose_config, openai_client
from tests.reports.local_http import LocalChatServer, chat_reply

# The six queries of the paper's §3.1, verbatim (the image goes before each text).
PAPER_QUERIES = {
    "chest_xray": "Please check if the given image is a chest X-ray scan. If it is a chest X-ray, return 'YES'. "
    "Otherwise, return 'NO'.",
    "human": "Please verify if the given image is a human chest X-ray scan. If it is a chest X-ray, return 'YES'. "
    "Otherwise, return 'NO'.",
    "frontal": "Please check if the given image is a frontal chest X-ray view. If it is a frontal view, return "
    "'YES'. If it is a lateral view or any other view, return 'NO'.",
    "quality": "Please analyze the provided chest X-ray (CXR) image and respond with 'NO' if the image quality is "
    "poor, such as being blurry, containing artifacts, or having poor contrast. Respond with 'YES' if the image "
    "quality is acceptable.",
    "artifacts": "Please analyze the following chest X-ray image. Respond with 'YES' if the image is clear, "
    "correctly oriented, and free of artifacts or imperfections that could affect its diagnostic quality. Respond "
    "with 'NO' if the image is blurry, incorrectly oriented, contains artifacts, or has imperfections that make it "
    "unsuitable for further analysis.",
    "fidelity": "Please check if the given image is a high-fidelity human chest X-ray scan. If it is a "
    "high-fidelity chest X-ray, return 'YES'. Otherwise, return 'NO'.",
}

YES = ["**Yes**", "Yes.", "yes", "  YES\n", "Answer: Yes", "`Yes`, it is."]
NO = ["**No**", "No.", "no", "Answer: NO", "NO, it is a lateral view.", "> No"]
NEITHER = ["Maybe.", "I cannot tell from this image.", "-", "Nope", "Not sure"]


def _key(image: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


class JudgeServer(LocalChatServer):
    """Answers each question from `script[image][question]`, finding the image by its pixels (so the
    test also checks that each question carries its own image); None: HTTP 400 (no answer)."""

    def __init__(self):
        self.script: dict[str, dict[str, str | None]] = {}
        self.asked: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        super().__init__(self.respond)

    def answer(self, image: np.ndarray, answers: list[str | None]) -> None:
        self.script[_key(image)] = dict(zip(PAPER_QUERIES.values(), answers))

    def respond(self, body):
        image_part, text_part = body["messages"][-1]["content"]
        url = image_part["image_url"]["url"]
        assert url.startswith("data:image/png;base64,")
        image = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
        question = text_part["text"]
        with self.lock:
            self.asked.append((_key(image), question))
        reply = self.script[_key(image)][question]
        return (400, None) if reply is None else (200, chat_reply(reply))


@pytest.fixture
def server():
    s = JudgeServer()
    yield s
    s.close()


def _radiographs(n: int, seed: int = 5) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [render(sample_scene(rng, ["nodule"]), 64)[0] for _ in range(n)]


def test_answers_are_read_whatever_their_formatting_and_the_rest_counted_as_no(server):
    images = _radiographs(3)
    server.answer(images[0], YES)
    server.answer(images[1], NO)
    server.answer(images[2], NEITHER + [None])
    judge = OpenAIVisionJudge(openai_client(server.url, "judge", concurrency=4, max_retries=0), PAPER_QUERIES)
    verdicts = judge.judge(images)
    assert verdicts == [
        dict.fromkeys(QUESTIONS, True),
        dict.fromkeys(QUESTIONS, False),
        dict.fromkeys(QUESTIONS, False),
    ]
    assert answer_counts(judge) == {"judge_yes": 6, "judge_no": 6, "judge_unparsed": 5, "judge_unanswered": 1}
    # Every question was asked once of every image.
    assert sorted(server.asked) == sorted((_key(im), q) for im in images for q in PAPER_QUERIES.values())


def test_paper_mode_asks_the_papers_six_queries_verbatim():
    # Composed as paper mode is (experiment=syncxr_paper), the judge's texts are §3.1's, key by key.
    cfg = compose_config("generate", ["experiment=syncxr_paper"])
    questions = dict(cfg.generation.curation.judge.questions)
    assert questions == PAPER_QUERIES
    assert list(questions) == list(QUESTIONS)  # the order verdicts are read in


def test_the_judge_refuses_questions_that_do_not_name_the_six_checks():
    client = openai_client("http://127.0.0.1:9/v1", "judge")
    with pytest.raises(ValueError, match=r"curation.judge.questions: needs one text for each of"):
        OpenAIVisionJudge(client, {k: v for k, v in PAPER_QUERIES.items() if k != "human"})
    with pytest.raises(ValueError, match=r"empty text for \['quality'\]"):
        OpenAIVisionJudge(client, {**PAPER_QUERIES, "quality": " "})


def test_an_empty_answer_is_a_backend_failure_not_a_no(server):
    # HTTP 200 with no text: the server failed to answer, it did not judge the image (the audit saw
    # half of a run's rows dropped for good on empty answers).
    images = _radiographs(2)
    server.answer(images[0], YES)
    server.answer(images[1], YES[:5] + ["  "])
    judge = OpenAIVisionJudge(
        openai_client(server.url, "judge", concurrency=4, max_retries=1, backoff_s=0.01), PAPER_QUERIES
    )
    assert judge.judge(images) == [dict.fromkeys(QUESTIONS, True), BackendFailure("empty_answer")]
    assert judge.counters()["judge_empty_answer"] == 2  # the answer and its retry


def answer_counts(judge) -> dict:
    """The judge's counts of answers by kind (its counters also carry the client's requests)."""
    return {
        k: v
        for k, v in judge.counters().items()
        if k in ("judge_yes", "judge_no", "judge_unparsed", "judge_unanswered")
    }


def test_paper_curation_built_from_config_passes_and_rejects_end_to_end(server, tiny_dino_path):
    rng = np.random.default_rng(0)
    bank = [rng.integers(0, 256, (64, 64), dtype=np.uint8) for _ in range(2)]  # the real corpus's rejects
    good = _radiographs(5, seed=9)
    copy_of_reject = bank[1].copy()
    cases = [  # (image, six answers, expected verdict)
        (good[0], YES, (True, "")),
        (good[1], NO[:5] + ["Yes."], (True, "")),  # the paper's rule: dropped only on six NOs
        (good[2], NO, (False, "judge:" + ",".join(QUESTIONS))),
        (good[3], NEITHER + ["Yes"], (True, "")),  # one YES is enough under drop_if_no=all
        (good[4], NEITHER + [None], (False, "judge:" + ",".join(QUESTIONS))),  # unchecked never passes
        (copy_of_reject, ["**YES**"] * 6, (False, "similar_to_bad")),
    ]
    for image, answers, _ in cases:
        server.answer(image, answers)
    # The tiny random Dinov2 puts every image within cosine ~0.95 of every other; delta 0.999 leaves
    # only an exact copy of a reject above it, which is what the bank step must catch.
    cfg = compose_config(
        "generate",
        [
            "curation=paper",
            f"curation.judge.client.base_url={server.url}",
            f"curation.embedding.path={tiny_dino_path}",
            "curation.delta=0.999",
        ],
    )
    cur = generation_config(cfg.generation)["curation"]
    assert (cur["drop_if_no"], cur["bad_bank"]) == ("all", "real_rejects")
    with pytest.raises(ValueError, match="real_rejects"):
        build_curator(cur)
    calls = []
    curator = build_curator(cur, real_rejects=lambda: calls.append(1) or bank)
    assert calls == [1] and isinstance(curator.judge, OpenAIVisionJudge)
    assert curator.judge.client.model == "OpenGVLab/InternVL2-26B"
    assert curator.check([image for image, _, _ in cases]) == [expected for _, _, expected in cases]
    assert answer_counts(curator.judge) == {
        "judge_yes": 14,
        "judge_no": 11,
        "judge_unparsed": 10,
        "judge_unanswered": 1,
    }
    assert curator.judge.client.counters()["llm_http_400"] == 1
