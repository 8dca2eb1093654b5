"""The speed benchmarks run end to end on a small random model and print their tables."""

from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[3] / 'benchmarks'


@pytest.fixture
def benchmarks(monkeypatch):
    if not BENCHMARKS.is_dir():
        pytest.skip('benchmarks/ is not beside the package (installed copy)')
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    # Random weights, whatever the shared folder holds.
    monkeypatch.setenv('YOLACT_SHARED_DIR', '/nonexistent')
    import importlib

    import speed
    return importlib.reload(speed)


def test_speed_prints_stages_node_path_and_agreement(benchmarks, capsys):
    benchmarks.main(['--config', 'yolact_resnet18', '--backends', 'eager,torch', '--batch', '2',
                     '--iterations', '1', '--warmup', '0', '--threads', '2'])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(('| eager |', '| torch |'))]
    assert len(rows) == 2 * 2 + 2  # two backends at batch 1 and 2, then the node path
    assert 'torch: 100/100 detections match (class, box +-1 px), min mask IoU 1.0000' in out


def test_postprocess_prints_each_stage(benchmarks, capsys):
    import postprocess

    postprocess.main(['--config', 'yolact_resnet18', '--repeats', '2'])
    out = capsys.readouterr().out
    assert '100 detections' in out
    for stage in ('Fast NMS', 'postprocessing (NMS, masks, copy)', 'node work'):
        assert f' ms  {stage}' in out


def test_threads_prints_a_table_per_setting_and_load(benchmarks, capsys):
    from yolact_ros.weights import demo_weights

    if not demo_weights().is_file():
        pytest.skip('the bundled demo model is missing')
    import threads

    threads.main(['--frames', '2', '--settings', '1', '--backends', 'torch',
                  '--background', '0'])
    out = capsys.readouterr().out
    assert 'load average before: ' in out and 'load average after: ' in out
    assert 'torch threads=1: torch 1 intra / 1 inter-op' in out
    assert '| backend | threads | 0 busy: median / p90 ms (vs default) |' in out
    rows = [line for line in out.splitlines() if line.startswith('| torch | 1 | ')]
    assert len(rows) == 1


def test_multi_camera_prints_a_row_per_camera_count_and_mode(benchmarks, capsys):
    from yolact_ros.weights import demo_weights

    if not demo_weights().is_file():
        pytest.skip('the bundled demo model is missing')
    import multi_camera

    multi_camera.main(['--cameras', '1', '2', '--seconds', '0.5', '--size', '64', '48',
                       '--threads', '1', '--no-batch'])
    out = capsys.readouterr().out
    assert 'demo model on the CPU, 1 threads, 64x48 bgr8' in out and 'load after: ' in out
    rows = [line.split(' | ')[:2] for line in out.splitlines() if line.startswith('| 1 |')
            or line.startswith('| 2 |')]
    assert rows == [['| 1', 'batch'], ['| 2', 'batch'], ['| 2', 'one call each']]
