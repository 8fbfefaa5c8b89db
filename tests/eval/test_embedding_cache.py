"""The embedding cache: hits, and files that are torn, garbage or planted pickles are encoded again."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from syncxr.data.benchmark_split import Split
from syncxr.eval import embeddings
from syncxr.eval.embeddings import EmbeddingCache


class Payload:
    """Unpickling this creates `path`."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


@pytest.fixture
def split(tmp_path):
    (tmp_path / "split.csv").write_text("Path\na.png\nb.png\nc.png\n")
    return Split(
        source=tmp_path / "split.csv",
        ids=["a", "b", "c"],
        paths=[tmp_path / p for p in "abc"],
        rows=[0, 1, 2],
        classes=[],
        labels=np.zeros((3, 0), dtype=np.int64),
    )


class Transform:
    size = 8


def test_bad_cache_files_are_encoded_again_and_never_unpickled(split, tmp_path, monkeypatch):
    calls = []

    def encode(model, split, transform, kind, *a):
        calls.append(kind)
        return torch.arange(6, dtype=torch.float32).reshape(3, 2) + len(calls), np.array([True, False, True])

    monkeypatch.setattr(embeddings, "encode_split", encode)
    cache = EmbeddingCache(tmp_path / "cache", model_key="m")
    feats, ok = cache.features(None, split, Transform(), "global", None)
    again, ok_again = cache.features(None, split, Transform(), "global", None)
    assert (cache.hits, cache.misses) == (1, 1) and torch.equal(feats, again) and list(ok_again) == [True, False, True]
    (path,) = (tmp_path / "cache").iterdir()

    marker = tmp_path / "pwned"
    bad_files = {"garbage": b"\x80\x04garbage", "torn": path.read_bytes()[:40], "empty": b"", "planted pickle": None}
    for what, blob in bad_files.items():
        if blob is None:
            torch.save({"features": Payload(marker), "ok": torch.ones(3, dtype=torch.bool)}, path)
        else:
            path.write_bytes(blob)
        n = len(calls)
        feats, ok = cache.features(None, split, Transform(), "global", None)
        assert len(calls) == n + 1, f"a {what} cache file was not encoded again"
        assert feats.shape == (3, 2) and list(ok) == [True, False, True]
    assert not marker.exists(), "a pickle planted in the embedding cache was executed"
    # A well-formed file for another number of rows (the split changed under the same key) is re-encoded too.
    from safetensors.torch import save_file

    save_file({"features": torch.zeros(2, 2), "ok": torch.ones(2, dtype=torch.bool)}, str(path))
    n = len(calls)
    cache.features(None, split, Transform(), "global", None)
    assert len(calls) == n + 1
