"""The CLI tests run commands in this process: keep their thread settings to themselves."""

import pytest


@pytest.fixture(autouse=True)
def restore_threads(monkeypatch):
    """Undo what ``--threads`` (``yolact_ros.runtime.set_threads``) set during a test.

    The commands set torch's intra-op threads (default 1); later tests in the same process
    would otherwise run with that count, and float sums change with it.
    """
    import torch

    from yolact_ros import runtime

    threads = torch.get_num_threads()
    monkeypatch.setattr(runtime, '_threads', runtime.configured_threads())
    yield
    torch.set_num_threads(threads)
