"""Two jobs building the same phantom corpus at once (a sweep's first jobs on an empty cache): its
images are rendered once, under the corpus directory's lock, and both get the same complete corpus."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from syncxr.data.dataset_format import is_complete, read_dataset
from syncxr.phantom import corpus
from syncxr.phantom.corpus import PhantomCorpusSpec, ensure_phantom_corpus


def test_concurrent_builds_of_one_phantom_corpus_render_its_images_once(tmp_path, monkeypatch):
    spec = PhantomCorpusSpec(kind="syn", n=3, seed=11, image_size=32)
    renders: list[int] = []  # the thread of each render
    rendering = threading.Event()
    real_render = corpus.render

    def counting_render(*args, **kwargs):
        renders.append(threading.get_ident())
        rendering.set()
        time.sleep(0.2)  # the first build outlasts the second one's start by far
        return real_render(*args, **kwargs)

    monkeypatch.setattr(corpus, "render", counting_render)
    # Threads: the directory's file lock excludes another open file of it in the same process too.
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(ensure_phantom_corpus, spec, tmp_path, False)
        assert rendering.wait(60)  # the first build is under way, its corpus not complete yet
        second = pool.submit(ensure_phantom_corpus, spec, tmp_path, False)
        dirs = first.result(timeout=120), second.result(timeout=120)
    assert len(renders) == spec.n and len(set(renders)) == 1, f"{len(renders)} renders for {spec.n} images"
    assert dirs[0] == dirs[1] == corpus.corpus_dir(spec, tmp_path) and is_complete(dirs[0])
    df, info = read_dataset(dirs[0])
    assert len(df) == info["counts"]["rows"] == spec.n
    assert all((dirs[0] / image).is_file() for image in df["image"])
    assert not list(tmp_path.glob("datasets/.*.building"))  # no build's temp dir left behind


def test_concurrent_builds_of_one_benchmark_twin_draw_it_once(tmp_path, monkeypatch):
    from syncxr.benchmarks.chexpert import CheXpert
    from syncxr.phantom import benchmarks

    chexpert = CheXpert(twin={"n_valid": 2, "n_test": 2, "image_size": 32})
    renders: list[int] = []
    rendering = threading.Event()
    real_render = benchmarks.render

    def counting_render(*args, **kwargs):
        renders.append(threading.get_ident())
        rendering.set()
        time.sleep(0.2)
        return real_render(*args, **kwargs)

    monkeypatch.setattr(benchmarks, "render", counting_render)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(chexpert.root_dir, tmp_path, False)
        assert rendering.wait(60)
        second = pool.submit(chexpert.root_dir, tmp_path, False)
        dirs = first.result(timeout=120), second.result(timeout=120)
    assert len(renders) == 4 and len(set(renders)) == 1, f"{len(renders)} renders for 4 images"
    assert dirs[0] == dirs[1] and (dirs[0] / "benchmark.json").is_file()
