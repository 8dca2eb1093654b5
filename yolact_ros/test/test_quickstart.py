"""The README's quickstart leaves the checkout clean: every output goes to an ignored folder.

The checkout (its tracked files and the untracked ones git does not ignore, so that uncommitted
work counts) is copied into a fresh git repository; the quickstart's commands run there with
this environment's ``yolact``, and ``git status --porcelain`` must stay empty.
"""

import os
from pathlib import Path
import shutil
import subprocess
import sys

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _git(*args, cwd):
    return subprocess.run(['git', *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture
def clone(tmp_path) -> Path:
    """Copy the checkout's files (not its ignored outputs) into a new repository; commit them."""
    if shutil.which('git') is None or not (REPO_ROOT / '.git').exists():
        pytest.skip('quickstart: needs git and a git checkout (apt-get install git)')
    target = tmp_path / 'yolact_ros'
    files = _git('ls-files', '-co', '--exclude-standard', '-z', cwd=REPO_ROOT).split('\0')
    for name in filter(None, files):
        source = REPO_ROOT / name
        if source.is_file():  # tracked files deleted in the work tree are listed too
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    _git('init', '-q', cwd=target)
    _git('add', '-A', cwd=target)
    _git('-c', 'user.name=test', '-c', 'user.email=test@example.com', 'commit', '-q', '-m',
         'snapshot', cwd=target)
    assert _git('status', '--porcelain', cwd=target) == ''
    return target


def _yolact() -> list:
    script = Path(sys.executable).parent / 'yolact'
    return [str(script)] if script.is_file() else [sys.executable, '-m', 'yolact_ros.cli.main']


def test_quickstart_leaves_git_status_clean(clone):
    env = dict(os.environ, YOLACT_WEIGHTS_DIR=str(clone / 'weights'))
    commands = [
        ['demo', '--frames', '2', '--device', 'cpu'],  # the quickstart (default output ./demo)
        ['predict', 'demo/scene.mp4', '--max-frames', '1', '--device', 'cpu'],  # ./predictions
        ['export', '--device', 'cpu'],  # the bundled model to ./exports, not into weights/
    ]
    for command in commands:
        result = subprocess.run(_yolact() + command, cwd=clone, env=env, capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, (command, result.stderr[-2000:])
    assert (clone / 'demo' / 'scene_overlay.mp4').is_file()
    assert (clone / 'predictions' / 'predictions.json').is_file()
    assert (clone / 'exports' / 'yolact_resnet18_synth.onnx').is_file()
    assert _git('status', '--porcelain', '--untracked-files=all', cwd=clone) == ''
