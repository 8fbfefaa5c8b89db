import pytest

from syncxr.config import MAX_DIRNAME, run_dirname


def test_run_dirname_is_stable_short_and_collision_free():
    assert run_dirname("") == "default"
    assert run_dirname("data=real,seed=1") == "data=real,seed=1"
    assert run_dirname("text_encoder.path=/models/bert").startswith("text_encoder.path=_models_bert-")
    # Paths that flatten to the same text must not share a run dir (nor resume each other's checkpoints).
    names = {run_dirname(f"data.syn.path={p}") for p in ("/data/syn_v2", "/data/syn/v2", "/data_syn/v2")}
    assert len(names) == 3
    assert run_dirname("data.syn.path=/data/syn_v2") == run_dirname("data.syn.path=/data/syn_v2")
    long = ",".join(f"key{i}=value{i}" for i in range(40))
    name = run_dirname(long)
    assert len(name) == MAX_DIRNAME and name == run_dirname(long)
    assert name != run_dirname(long + ",x=1")


def test_a_secret_on_the_command_line_is_refused():
    for override in ("llm.api_key=sk-123", "+curation.judge.client.api_key=x", "wandb.token=y"):
        with pytest.raises(ValueError, match="environment variable"):
            run_dirname(f"data=syn,{override}")
    for override in ("llm.max_new_tokens=8", "llm.max_tokens=64", "curation.judge.client.api_key_env=MY_KEY"):
        assert run_dirname(override)  # settings about tokens, or naming a key's variable, are no secret
