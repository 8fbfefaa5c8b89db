import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models are bound by the number of ops, not by arithmetic: with one thread no op waits for
    a second core that other processes keep busy (a Swin-T step: 0.1 s instead of 9 s then)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
