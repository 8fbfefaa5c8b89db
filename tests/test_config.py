from syncxr.config import MAX_DIRNAME, run_dirname


def test_run_dirname_is_stable_short_and_flat():
    assert run_dirname("") == "default"
    assert run_dirname("data=real,seed=1") == "data=real,seed=1"
    assert run_dirname("text_encoder.path=/models/bert") == "text_encoder.path=_models_bert"
    long = ",".join(f"key{i}=value{i}" for i in range(40))
    name = run_dirname(long)
    assert len(name) == MAX_DIRNAME and name == run_dirname(long)
    assert name != run_dirname(long + ",x=1")
