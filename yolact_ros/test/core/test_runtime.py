"""set_threads sets torch's thread pools and hands the same count to ONNX Runtime sessions."""

import subprocess
import sys

import pytest
import torch

from yolact_ros import runtime


@pytest.fixture(autouse=True)
def restore_threads(monkeypatch):
    """Keep this process's torch thread counts, and runtime's record, as they were."""
    intra = torch.get_num_threads()
    # Inter-op threads can be set once per process: record the calls instead.
    calls = []
    monkeypatch.setattr(torch, 'set_num_interop_threads', calls.append)
    monkeypatch.setattr(runtime, '_threads', None)
    yield calls
    torch.set_num_threads(intra)


def test_set_threads_applies_the_count_to_torch_and_records_it(restore_threads):
    assert runtime.configured_threads() is None
    assert runtime.set_threads(1) == 1
    assert torch.get_num_threads() == 1
    assert runtime.configured_threads() == 1
    assert restore_threads == [1] or torch.get_num_interop_threads() == 1
    assert runtime.set_threads(2) == 2
    assert torch.get_num_threads() == 2
    assert runtime.configured_threads() == 2


def test_zero_means_the_default(monkeypatch):
    monkeypatch.setattr(runtime, 'available_cores', lambda: 2)
    assert runtime.default_threads() == 1  # measured on 2 cores: benchmarks/threads.py
    assert runtime.set_threads(0) == runtime.default_threads() == torch.get_num_threads()
    assert runtime.configured_threads() == 1


@pytest.mark.parametrize('cores, expected', [(1, 1), (2, 1), (3, 1), (4, 2), (8, 4), (64, 4)])
def test_the_default_is_half_the_cores_at_most_four(monkeypatch, cores, expected):
    monkeypatch.setattr(runtime, 'available_cores', lambda: cores)
    assert runtime.default_threads() == expected


@pytest.mark.parametrize('threads', [-1, -8])
def test_a_negative_count_is_refused_with_its_value(threads):
    with pytest.raises(ValueError, match=f'threads must be >= 0 .*got {threads}'):
        runtime.set_threads(threads)
    assert runtime.configured_threads() is None


@pytest.mark.parametrize('threads', [1.5, '2', True])
def test_a_non_integer_is_refused_with_its_value(threads):
    with pytest.raises(ValueError, match='threads must be an integer >= 0, got'):
        runtime.set_threads(threads)


def test_inter_op_threads_already_fixed_are_kept_without_an_error(monkeypatch):
    def refuse(count):
        raise RuntimeError('cannot set number of interop threads after parallel work has '
                           'started or set_num_interop_threads called')

    monkeypatch.setattr(torch, 'set_num_interop_threads', refuse)
    monkeypatch.setattr(torch, 'get_num_interop_threads', lambda: 7)
    assert runtime.set_threads(1) == 1
    assert torch.get_num_threads() == 1 and runtime.configured_threads() == 1


def run_python(code: str) -> str:
    """Run ``code`` in a fresh interpreter (thread pools are per process); return its stdout."""
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          check=True, timeout=120).stdout


def test_a_fresh_process_gets_both_pools_and_a_second_call_is_harmless():
    code = ('import torch; from yolact_ros.runtime import set_threads;'
            'print(set_threads(1), torch.get_num_threads(), torch.get_num_interop_threads());'
            'torch.ones(1000, 1000) @ torch.ones(1000, 1000);'
            'print(set_threads(2), torch.get_num_threads(), torch.get_num_interop_threads())')
    assert run_python(code).split('\n')[:2] == ['1 1 1', '2 2 1']


def test_importing_sets_nothing():
    code = ('import torch; before = (torch.get_num_threads(), torch.get_num_interop_threads());'
            'import yolact_ros.runtime as r;'
            'print(before == (torch.get_num_threads(), torch.get_num_interop_threads()),'
            ' r.configured_threads())')
    assert run_python(code).split() == ['True', 'None']


@pytest.fixture(scope='module')
def onnx_file(tiny_weights, tmp_path_factory):
    pytest.importorskip('onnxruntime')
    from yolact_ros.export.backends import cached_onnx

    return cached_onnx(tiny_weights, cache_dir=tmp_path_factory.mktemp('onnx'))


def test_onnx_runtime_sessions_use_the_recorded_count(onnx_file):
    from yolact_ros.export.backends import OnnxRuntimeBackend

    def session_threads(backend):
        options = backend.session.get_session_options()
        return options.intra_op_num_threads, options.inter_op_num_threads

    assert session_threads(OnnxRuntimeBackend(onnx_file)) == (0, 0)  # ONNX Runtime's default
    runtime.set_threads(1)
    backend = OnnxRuntimeBackend(onnx_file)
    assert session_threads(backend) == (1, 1)
    options = backend.session.get_session_options()
    assert options.get_session_config_entry('session.intra_op.allow_spinning') == '0'
    assert session_threads(OnnxRuntimeBackend(onnx_file, threads=2)) == (2, 2)  # explicit wins
