"""``benchmarks/tracking.py`` end to end on a tiny sequence: its table and its picture."""

from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[3] / 'benchmarks'


def test_tracking_benchmark_prints_eight_rows_and_draws_the_picture(
        monkeypatch, capsys, tmp_path):
    from yolact_ros.weights import demo_weights

    if not BENCHMARKS.is_dir():
        pytest.skip('benchmarks/ is not beside the package (installed copy)')
    if not demo_weights().is_file():
        pytest.skip('the bundled demo model is missing')
    pytest.importorskip('motmetrics')
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import tracking

    picture = tmp_path / 'strip.png'
    scores = tracking.main(['--sequences', '1', '--frames', '10', '--size', '128',
                            '--min-area', '100', '--picture', str(picture),
                            '--picture-frames', '3', '6'])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(('| gt+noise |', '| model |'))]
    assert len(rows) == 8 and len(scores) == 8
    counted, every = scores['gt+noise', 'box+mask', '30 Hz']
    assert counted.frames == 10 and every.objects >= counted.objects > 0
    assert counted.idf1 > 0.5  # noisy ground truth tracks well even on 10 frames
    assert picture.is_file() and 'frames 3, 6' in out


def test_tracking_benchmark_on_camera_shaped_frames(monkeypatch, capsys):
    from yolact_ros.weights import demo_weights

    if not BENCHMARKS.is_dir() or not demo_weights().is_file():
        pytest.skip('benchmarks/ or the bundled demo model is missing')
    pytest.importorskip('motmetrics')
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import tracking

    scores = tracking.main(['--sequences', '1', '--frames', '6', '--size', '192x144',
                            '--picture', ''])
    out = capsys.readouterr().out
    # The ignore area follows the shorter side: 500 px at 256, (144 / 256)^2 of it here.
    assert '6 frames, 192x144 px' in out and '(< 158 px visible)' in out
    assert scores['gt+noise', 'box+mask', '30 Hz'][0].frames == 6
