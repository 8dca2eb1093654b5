"""Fixtures of the training-engine tests: tiny synthetic datasets, one thread."""

from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread():
    """Run on one intra-op thread: on a busy shared CPU two threads are many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='session')
def synth_train(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight 96 px synthetic images with heavy occlusion (seed 0)."""
    from yolact_ros.data import generate_dataset

    out = tmp_path_factory.mktemp('synth_train')
    generate_dataset(out, num_images=8, size=96, seed=0, occlusion='high')
    return out


@pytest.fixture(scope='session')
def synth_val(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two held-out synthetic images (seed 1)."""
    from yolact_ros.data import generate_dataset

    out = tmp_path_factory.mktemp('synth_val')
    generate_dataset(out, num_images=2, size=96, seed=1)
    return out
