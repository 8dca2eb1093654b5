"""``speed.py --upstream DIR``: bad input exits 2; a smoke run where a checkout is given.

The smoke run needs a dbolya/yolact checkout in ``$YOLACT_UPSTREAM_DIR`` (it is not part of this
repository) and the shared parity checkpoint; without them it is skipped.
"""

import importlib
import os
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[3] / 'benchmarks'
UPSTREAM = os.environ.get('YOLACT_UPSTREAM_DIR', '')


@pytest.fixture
def speed(monkeypatch):
    if not BENCHMARKS.is_dir():
        pytest.skip('benchmarks/ is not beside the package (installed copy)')
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import speed
    return importlib.reload(speed)


def test_upstream_without_loadable_weights_is_one_line_and_exit_2(speed, monkeypatch, capsys):
    monkeypatch.setenv('YOLACT_SHARED_DIR', '/nonexistent')  # random weights: upstream can't
    speed = importlib.reload(speed)  # it reads the shared folder on import
    with pytest.raises(SystemExit) as exit_info:
        speed.main(['--config', 'yolact_resnet18', '--upstream', '/nonexistent', '--backends',
                    'torch', '--iterations', '1', '--warmup', '0'])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == ['error: --upstream needs weights upstream can load: --weights FILE.pth, '
                     'or the shared parity checkpoint (yolact_resnet50)']


def test_side_by_side_with_upstream_prints_ratios_and_parity(speed, capsys, reference_dir):
    if not UPSTREAM or not (Path(UPSTREAM) / 'yolact.py').is_file():
        pytest.skip('no dbolya/yolact checkout: set YOLACT_UPSTREAM_DIR to run this smoke test')
    speed.main(['--upstream', UPSTREAM, '--backends', 'torch', '--iterations', '1',
                '--warmup', '0', '--threads', '2'])
    out = capsys.readouterr().out
    assert '| upstream |' in out and '1.00x | reference |' in out
    assert '100/100 matched' in out and 'within parity tolerances' in out
