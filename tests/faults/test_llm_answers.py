"""Generation against an LLM server whose answers are wrong in the ways the second audit found:
HTTP 200 with empty content (a backend failure: kept for a re-run, never dropped), HTTP 400 to
every request (a wrong model or bad parameters: the run stops with the server's message and the
resume command, commits nothing, and resumes once the server is fixed), and one prompt too long
for the context (a content failure of that one sample, counted)."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

from syncxr.data.dataset_format import is_complete, read_dataset
from syncxr.dataset_dirs import generate_dataset
from syncxr.generation import pipeline
from syncxr.generation.generation_job import resume_hint
from syncxr.generation.shard_store import IncompleteGeneration, ShardStore
from syncxr.reports.backend_failure import BackendMisconfigured
from syncxr.reports.requests import ReportRequest
from tests.generation.template_server import TemplateChatServer
from tests.generation.test_backend_failures import _same_dataset
from tests.generation.test_pipeline import SMALL, gen_cfg
from tests.reports.local_http import CONTEXT_TOO_LONG, NO_SUCH_MODEL, chat_reply, vllm_error

ARGS = SMALL + ["generation.n_samples=12", "generation.shard_size=6", "llm=llama31_8b", "llm.max_retries=0"]
COMMAND = ["python", "generate.py", "llm=llama31_8b", "generation.n_samples=12"]


class MisbehavingServer(TemplateChatServer):
    """The template chat server, answering empty content to its next `empty_next` requests (-1: to
    every one), `refuse_all` = (status, body) to every request, and a context-length 400 to the
    prompts in `too_long`."""

    def __init__(self):
        super().__init__()
        self.empty_next, self.refuse_all, self.too_long = 0, None, set()
        self.empty_lock = threading.Lock()

    def reset(self):
        self.empty_next, self.refuse_all, self.too_long = 0, None, set()

    def respond(self, body):
        prompt = body["messages"][-1]["content"]
        if self.refuse_all is not None:
            return self.refuse_all
        if prompt in self.too_long:
            return 400, vllm_error(CONTEXT_TOO_LONG)
        with self.empty_lock:
            empty = self.empty_next != 0
            self.empty_next -= self.empty_next > 0
        return (200, chat_reply("")) if empty else super().respond(body)


@pytest.fixture(scope="module", autouse=True)
def no_plots():
    """The long-tail figures take most of a 20-sample generation's time and are no part of what is tested."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "plot_long_tail", lambda *a, **k: None)
        yield


@pytest.fixture(scope="module")
def server():
    s = MisbehavingServer()
    yield s
    s.close()


@pytest.fixture
def gen(server):
    server.reset()
    yield gen_cfg(ARGS + [f"llm.base_url={server.url}", "llm.backoff_s=0.01"])
    server.reset()


@pytest.fixture(scope="module")
def reference(server, cache_dir, tmp_path_factory):
    """The dataset an uninterrupted run against the healthy server makes."""
    server.reset()
    return generate_dataset(
        gen_cfg(ARGS + [f"llm.base_url={server.url}"]), tmp_path_factory.mktemp("ref") / "ds", cache_dir, progress=False
    )


def _records(out):
    return [ShardStore(out / "shards").record(k) for k in (0, 1)]


def test_empty_answers_are_retried_by_the_next_run_and_none_is_dropped(server, gen, reference, cache_dir, tmp_path):
    server.empty_next = 3  # the first three findings requests of shard 0 (three samples) come back empty
    with pytest.raises(
        IncompleteGeneration,
        match=r"3 of 12 samples were not made because a backend failed "
        r"\(llm:empty_answer: 3\)",
    ):
        generate_dataset(gen, tmp_path / "ds", cache_dir, progress=False)
    out = generate_dataset(gen, tmp_path / "ds", cache_dir, progress=False)  # the server answers again
    _same_dataset(out, reference)
    counts, ref_counts = read_dataset(out)[1]["counts"], read_dataset(reference)[1]["counts"]
    assert counts["retried"] == 3 and counts["dropped"] == ref_counts["dropped"]


def test_a_server_that_always_answers_empty_stops_the_run_with_nothing_dropped(server, gen, cache_dir, tmp_path):
    server.empty_next = -1
    with pytest.raises(
        IncompleteGeneration,
        match=r"12 of 12 samples were not made because a backend failed "
        r"\(llm:empty_answer: 12\)",
    ):
        generate_dataset(gen, tmp_path / "ds", cache_dir, progress=False)
    records = _records(tmp_path / "ds")
    assert [len(r["retryable"]) for r in records] == [6, 6]
    assert [r["counters"]["content"]["samples_dropped"] for r in records] == [0, 0]
    assert not is_complete(tmp_path / "ds")


def test_every_request_refused_stops_with_the_servers_message_and_resumes_once_fixed(
    server, gen, reference, cache_dir, tmp_path
):
    out = tmp_path / "ds"
    for status, body, message in [
        (404, vllm_error(NO_SUCH_MODEL, 404, "NotFoundError"), NO_SUCH_MODEL),  # vLLM
        (400, vllm_error("temperature must be non-negative, got -1.0."), "temperature must be non-negative"),
    ]:  # a 400 whose message names no cause
        server.refuse_all = (status, body)
        with pytest.raises(BackendMisconfigured) as err, resume_hint(COMMAND):
            generate_dataset(gen, out, cache_dir, progress=False)
        text = str(err.value)
        assert f"HTTP {status}: {message}" in text, text
        assert text.endswith("re-run the same command; it resumes where this run stopped:\n  " + " ".join(COMMAND))
        assert _records(out) == [None, None] and not list((out / "shards").glob("rows_*"))  # nothing committed
    server.refuse_all = None  # the server fixed: the same command makes the whole dataset
    _same_dataset(generate_dataset(gen, out, cache_dir, progress=False), reference)


def test_a_prompt_too_long_for_the_context_drops_only_its_sample_and_is_counted(
    server, gen, reference, cache_dir, tmp_path
):
    ref_rows, ref_info = read_dataset(reference)
    plan = pd.read_parquet(reference / "plan.parquet").set_index("id")
    sid = ref_rows["id"].iloc[3]
    request = ReportRequest(sid, "findings", list(plan.loc[sid, "entities"]), seed=0)
    server.too_long = {request.messages()[-1]["content"]}  # every attempt of this sample, whatever its seed
    out = generate_dataset(gen, tmp_path / "ds", cache_dir, progress=False)
    rows, info = read_dataset(out)
    pd.testing.assert_frame_equal(rows, ref_rows[ref_rows["id"] != sid].reset_index(drop=True))
    assert info["counts"]["dropped"] == ref_info["counts"]["dropped"] + 1 and info["counts"]["retried"] == 0
    assert info["counters"]["findings_gave_up"] == ref_info["counters"]["findings_gave_up"] + 1
    assert info["backend"]["llm_http_400"] == 5  # max_report_attempts, each refused
