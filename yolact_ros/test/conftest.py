"""Fixtures shared by the whole test suite, and the closing list of skipped groups."""

from collections import Counter
from dataclasses import replace
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_REFERENCE = Path(os.environ.get(
    'YOLACT_SHARED_DIR', REPO_ROOT.parent / 'shared')) / 'reference' / 'upstream'


@pytest.fixture(scope='session')
def reference_dir() -> Path:
    """Return the upstream parity material folder; skip where it is absent."""
    if not (SHARED_REFERENCE / 'yolact_resnet50_ref.npz').is_file():
        pytest.skip(f'parity with upstream: reference material not found at {SHARED_REFERENCE} '
                    '(the shared/ folder beside the checkout; set YOLACT_SHARED_DIR to where it '
                    'is)')
    return SHARED_REFERENCE


@pytest.fixture(scope='session')
def tiny_config():
    """Return a small, fast network config (ResNet-18, 128 px input, three classes)."""
    from yolact_ros.config import get_config

    return replace(get_config('yolact_resnet18'), input_size=128,
                   class_names=('circle', 'square', 'ring'), category_ids=(1, 3, 7))


@pytest.fixture(scope='session')
def tiny_weights(tmp_path_factory, tiny_config) -> Path:
    """Write a randomly initialised tiny model (fixed seed) as a safetensors checkpoint."""
    import torch

    from yolact_ros.checkpoint import save_checkpoint
    from yolact_ros.modeling import build_model

    torch.manual_seed(0)
    model = build_model(tiny_config)
    path = tmp_path_factory.mktemp('weights') / 'tiny.safetensors'
    return save_checkpoint(path, model, tiny_config)


def skip_reason(report) -> str:
    """Return the reason a test was skipped, without pytest's ``Skipped: `` prefix."""
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix('Skipped: ').strip()


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """End the run with one line per skip reason and how many tests it skipped (even with -q)."""
    groups = Counter(skip_reason(report) for report in terminalreporter.stats.get('skipped', []))
    for reason, count in sorted(groups.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(
            f'skipped: {reason} \u2014 {count} test{"s" if count > 1 else ""} skipped')
