"""Shared fixtures for the data tests: a tiny synthetic dataset, written once per session."""

from pathlib import Path

import pytest

from yolact_ros.data.synthetic_dataset import generate_dataset

SYNTH_ARGS = {'num_images': 4, 'size': 96, 'seed': 3, 'occlusion': 'high'}


@pytest.fixture(scope='session')
def synth_args() -> dict:
    """Return the arguments ``synth_dir`` was generated with."""
    return dict(SYNTH_ARGS)


@pytest.fixture(scope='session')
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a directory holding a 4-image, 96 px synthetic dataset (seed 3, high occlusion)."""
    out = tmp_path_factory.mktemp('synth')
    generate_dataset(out, **SYNTH_ARGS)
    return out
