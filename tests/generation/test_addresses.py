"""Transport settings (server URLs, the key's variable, timeouts, retries, concurrency, batch sizes
that do not change the answers) are no part of any dataset address; what changes the data is."""

from __future__ import annotations

import pytest

from syncxr.dataset_dirs import build_curated_dir
from syncxr.generation.addresses import generation_hash
from syncxr.generation.generation_job import generated_dir, generation_config
from syncxr.generation.partial_dataset import partial_hash
from syncxr.images import corpus_curation
from tests.helpers import compose_config, compose_train

SERVED = ["llm=llama31_8b", "imagegen=roentgen", "ner=rate_ner", "curation=paper", "curation.bad_bank=/data/bad"]
TRANSPORT = [
    "llm.base_url=http://node7:9000/v1",
    "llm.base_urls=[http://a:8000/v1,http://b:8000/v1]",
    "llm.api_key_env=OTHER_KEY",
    "llm.timeout_s=5",
    "llm.max_retries=9",
    "llm.backoff_s=3",
    "llm.concurrency=256",
    "imagegen.batch_size=2",
    "ner.batch_size=1",
    "curation.embedding.batch_size=4",
    "curation.judge.client.base_url=http://judge:1/v1",
    "curation.judge.client.concurrency=1",
]


def _hash(overrides) -> str:
    return generation_hash(generation_config(compose_config("generate", overrides).generation))


@pytest.mark.parametrize("override", TRANSPORT)
def test_transport_settings_do_not_move_a_generated_dataset(override):
    assert _hash(SERVED + [override]) == _hash(SERVED)


@pytest.mark.parametrize(
    "override",
    [
        "llm.model=other/model",
        "llm.temperature=0.2",
        "imagegen.num_inference_steps=20",
        "curation.judge.client.model=other-mllm",
        "generation.n_samples=7",
    ],
)
def test_what_changes_the_data_moves_it(override):
    assert _hash(SERVED + [override]) != _hash(SERVED)


def test_the_in_process_llms_batch_size_does_not_move_its_dataset(tmp_path):
    # Each text is drawn from its own request's seed (syncxr.reports.row_sampling), whatever the batch:
    # two configs differing only in llm.batch_size name one dataset directory (issue 22).
    local = ["llm=transformers", "llm.path=/models/x"]
    gens = [generation_config(compose_config("generate", local + [f"llm.batch_size={b}"]).generation) for b in (1, 8)]
    assert generated_dir(gens[0], tmp_path) == generated_dir(gens[1], tmp_path)
    assert _hash(local + ["llm.temperature=0.2"]) != _hash(local)  # what the texts depend on still moves it


def test_partial_datasets_ignore_transport_settings_of_their_backend():
    cfg = compose_train(["data=real_image_syn_report", "i2r@data.syn.i2r=openai_vision", "data.syn.i2r.client.model=m"])
    from syncxr.config import plain  # noqa: PLC0415

    spec = plain(cfg.data.syn)
    moved = {
        **spec,
        "i2r": {
            **spec["i2r"],
            "client": {
                **spec["i2r"]["client"],
                "base_url": "http://x/v1",
                "api_key_env": "K2",
                "timeout_s": 1,
                "concurrency": 2,
            },
        },
    }
    assert partial_hash(moved) == partial_hash(spec)
    assert partial_hash({**spec, "seed": 1}) != partial_hash(spec)


def test_the_curated_corpus_ignores_its_batch_size(real_dir_128, monkeypatch):
    made = []
    monkeypatch.setattr(corpus_curation, "is_complete", lambda directory: False)  # whatever the cache holds
    monkeypatch.setattr(
        corpus_curation,
        "curate_corpus",
        lambda src, target, *a, **k: (
            made.append(target) or {"judge": 0, "similarity": 0, "unreadable": 0, "kept": 0, "rows": 0}
        ),
    )
    cur = compose_train(["curation=phantom"]).curation
    for batch in (64, 8):
        cur.real.batch_size = batch
        build_curated_dir(real_dir_128, cur)
    assert len(made) == 2 and made[0] == made[1]
