"""``yolact train`` as users run it: SIGTERM handling, torchrun with two processes, errors."""

import argparse
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import pytest

from yolact_ros.cli.main import main
from yolact_ros.cli.train import build_config, register
from yolact_ros.engine import load_training_state
from yolact_ros.losses import build_criterion

TINY = ['--config', 'yolact_resnet18', '--input-size', '128', '--init', 'none', '--workers', '0',
        '--device', 'cpu']


def _environment() -> dict:
    return dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')


def _wait_for_rows(csv_path: Path, process: subprocess.Popen, rows: int,
                   timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f'training exited early: {process.communicate()[1][-2000:]}')
        if csv_path.is_file() and len(csv_path.read_text().splitlines()) > rows:
            return
        time.sleep(0.2)
    process.kill()
    pytest.fail(f'no {rows} training rows in {csv_path} after {timeout} s')


def test_sigterm_writes_an_interrupt_checkpoint_and_exits_143(synth_train, tmp_path):
    out = tmp_path / 'run'
    command = [sys.executable, '-m', 'yolact_ros.cli.main', 'train', *TINY,
               '--data', str(synth_train), '--batch-size', '2', '--iterations', '500',
               '--out', str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=_environment())
    _wait_for_rows(out / 'metrics.csv', process, rows=1)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    checkpoints = sorted((out / 'checkpoints').glob('interrupt_*.pt'))
    assert len(checkpoints) == 1
    state = load_training_state(checkpoints[0])
    last_row = (out / 'metrics.csv').read_text().splitlines()[-1]
    assert int(last_row.split(',')[0]) == state['iteration'] >= 1
    assert f'continue with: yolact train --resume {checkpoints[0]}' in stdout
    assert 'SIGTERM: stopping after this iteration' in stderr
    assert not (out / 'model.safetensors').exists()


def test_torchrun_two_cpu_processes_train_and_only_rank_0_writes(synth_train, tmp_path):
    out = tmp_path / 'ddp'
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
               '--nproc-per-node', '2', '-m', 'yolact_ros.cli.main', 'train', *TINY,
               '--data', str(synth_train), '--batch-size', '4', '--iterations', '2',
               '--checkpoint-every', '2', '--out', str(out)]
    completed = subprocess.run(command, capture_output=True, text=True, env=_environment(),
                               timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.count('weights: ') == 1  # rank 1 prints nothing
    assert sorted(p.name for p in (out / 'checkpoints').iterdir()) == ['iter_0000002.pt']
    state = load_training_state(out / 'checkpoints' / 'iter_0000002.pt')
    assert state['world_size'] == 2 and len(state['rng']) == 2
    assert not state['rng'][0]['torch'].equal(state['rng'][1]['torch'])  # one stream each
    assert state['data']['batches_per_epoch'] == 2  # 8 images / 2 processes / 2 per process
    assert (out / 'model.safetensors').is_file()
    assert len((out / 'metrics.csv').read_text().splitlines()) == 3  # header + 2 rows
    # Resuming needs as many processes.
    code = main(['train', '--resume', str(out / 'checkpoints' / 'iter_0000002.pt'),
                 '--out', str(tmp_path / 'single'), '--device', 'cpu'])
    assert code == 2


def test_cli_errors_are_one_line(synth_train, tmp_path, capsys):
    assert main(['train', '--data', str(synth_train)]) == 2
    assert 'yolact train: error: --config required (or --resume CKPT)' in capsys.readouterr().err
    assert main(['train', '--resume', str(tmp_path / 'x.pt'), '--batch-size', '4']) == 2
    assert ('--batch-size cannot change on --resume: the run continues with the settings '
            'stored in the checkpoint') in capsys.readouterr().err
    assert main(['train', '--resume', str(tmp_path / 'x.pt')]) == 2
    assert f'training checkpoint not found: {tmp_path / "x.pt"}' in capsys.readouterr().err
    assert main(['train', *TINY, '--data', str(tmp_path / 'missing.yaml')]) == 2
    assert 'missing.yaml does not exist' in capsys.readouterr().err
    assert main(['train', *TINY, '--data', str(synth_train), '--contextual-bandwidth', '0']) == 2
    assert '--contextual-bandwidth must be > 0, got 0.0' in capsys.readouterr().err


def test_contextual_options_reach_the_criterion(synth_train):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(['train', *TINY, '--data', str(synth_train),
                              '--contextual-weight', '0.3', '--contextual-bandwidth', '0.2'])
    losses = build_config(args).losses
    assert losses.weights.context == 0.3
    assert build_criterion(losses).context_bandwidth == 0.2


DDP_SCRIPT = '''
import sys
from dataclasses import replace

from yolact_ros.config import get_config
from yolact_ros.engine import train, TrainConfig
from yolact_ros.losses import LossConfig, LossWeights

# YOLACT++'s mask scorer (smallest input it takes) with its loss off: its parameters get no
# gradient, which DistributedDataParallel must accept.
model = replace(get_config('yolact_resnet18'), input_size=256, mask_rescoring=True)
train(TrainConfig(model=model, data=sys.argv[1], out_dir=sys.argv[2], batch_size=2,
                  iterations=2, checkpoint_every=2, init='none', workers=0, device='cpu',
                  augment='none', losses=LossConfig(weights=LossWeights(maskiou=0.0))))
'''


def test_torchrun_with_an_unused_mask_scorer_trains(synth_train, tmp_path):
    script = tmp_path / 'ddp_unused.py'
    script.write_text(DDP_SCRIPT)
    out = tmp_path / 'ddp_unused'
    completed = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc-per-node', '2',
         str(script), str(synth_train), str(out)],
        capture_output=True, text=True, env=_environment(), timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert (out / 'model.safetensors').is_file()
