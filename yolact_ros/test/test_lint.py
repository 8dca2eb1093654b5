"""Code style as the ROS 2 linters check it (ament_flake8's configuration, in setup.cfg)."""

from pathlib import Path
import subprocess
import sys

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PYTHON_TREES = ['yolact_ros', 'benchmarks', 'training']


def test_flake8_reports_nothing():
    pytest.importorskip('flake8')
    targets = [str(REPO_ROOT / tree) for tree in PYTHON_TREES if (REPO_ROOT / tree).exists()]
    result = subprocess.run(
        [sys.executable, '-m', 'flake8', '--config', str(REPO_ROOT / 'yolact_ros' / 'setup.cfg'),
         *targets], capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
