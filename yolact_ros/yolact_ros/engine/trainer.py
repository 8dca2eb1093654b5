"""Train YOLACT: one plain training function, :func:`train`, and the loop's data and signals.

The run's objects and its steps (optimisation step, validation, checkpoints, final weights) are in
:mod:`yolact_ros.engine.session`; its settings in :mod:`yolact_ros.engine.train_config`.

Run directory (``out_dir``): ``checkpoints/iter_NNNNNNN.pt`` (every ``checkpoint_every``
iterations, the newest ``keep_checkpoints`` kept), ``checkpoints/interrupt_NNNNNNN.pt`` (on
SIGINT / SIGTERM), ``metrics.csv``, ``val.csv``, ``loss_curve.png``, ``tensorboard/``,
``train_config.json`` and, at the end, ``model.safetensors`` (the project weights format).
"""

from dataclasses import fields
import json
import logging
from pathlib import Path
import random
import signal
import threading
import time
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch

from yolact_ros.data import CocoDataset, collate, resolve_dataset, SSDAugmentation
from yolact_ros.engine.distributed import (barrier, cleanup, DistributedContext,
                                           setup_distributed)
from yolact_ros.engine.metrics import MetricsLogger
from yolact_ros.engine.session import build_run, TrainingRun
from yolact_ros.engine.state import load_training_state
from yolact_ros.engine.train_config import RUNTIME_FIELDS, TrainConfig, TrainResult

LOGGER = logging.getLogger(__name__)


def _ignore_interrupts(worker_id: int) -> None:
    """Data-loader workers leave SIGINT / SIGTERM to the main process (which checkpoints).

    A signal sent to the whole process group (Ctrl-C, ``docker stop``) would otherwise kill the
    workers and crash the main process before it writes its interrupt checkpoint; the main
    process shuts its workers down itself, and they exit when it dies.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def batches(dataset: CocoDataset, *, batch_size: int, context: DistributedContext, seed: int,
            workers: int, start: int) -> Iterator[Tuple[torch.Tensor, List[dict]]]:
    """Yield training batches forever, skipping the first ``start`` (resuming mid-epoch).

    Epoch ``e`` visits this process's share of a permutation seeded by ``seed`` and ``e``
    (``DistributedSampler``); ``dataset.set_epoch(e)`` selects its augmentation draw. Batch
    ``b`` of a run is therefore the same whether or not the run was interrupted before it. The
    loader gets its own generator so it never consumes the global torch RNG.
    """
    from torch.utils.data import DataLoader, DistributedSampler

    sampler = DistributedSampler(dataset, num_replicas=context.world_size, rank=context.rank,
                                 shuffle=True, seed=seed)
    per_epoch = len(sampler) // batch_size
    if per_epoch == 0:
        raise ValueError(f'{len(dataset)} training images cannot fill one batch of '
                         f'{batch_size} per process ({context.world_size} processes)')
    epoch, skip = divmod(start, per_epoch)
    while True:
        dataset.set_epoch(epoch)
        sampler.set_epoch(epoch)
        indices = list(sampler)[skip * batch_size:per_epoch * batch_size]
        loader = DataLoader(
            dataset, batch_size=batch_size, sampler=indices, num_workers=workers,
            collate_fn=collate, drop_last=True, pin_memory=context.device.type == 'cuda',
            worker_init_fn=_ignore_interrupts,
            generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        yield from loader
        epoch, skip = epoch + 1, 0


class StopOnSignal:
    """Turn SIGINT / SIGTERM into a request to stop after the current iteration.

    A second signal stops at once (``KeyboardInterrupt``). Handlers are only installed from the
    main thread, and the previous ones are restored on exit.
    """

    def __init__(self) -> None:
        self.signal_number: Optional[int] = None
        self._previous: Dict[int, object] = {}

    def __enter__(self) -> 'StopOnSignal':
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, frame: object) -> None:
        if self.signal_number is not None:
            raise KeyboardInterrupt
        self.signal_number = number
        LOGGER.warning('%s: stopping after this iteration (checkpoint first); send it again to '
                       'stop at once', signal.Signals(number).name)

    def __exit__(self, *exc_info) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


def build_datasets(config: TrainConfig) -> Tuple[CocoDataset, Optional[CocoDataset]]:
    """Build the augmented training set (images with objects only, as upstream) and val set.

    Without ``val_data``, a dataset's own ``val`` split validates when it is not the training
    split itself (a flat dataset YAML serves every split).
    """
    model = config.model
    train_spec = resolve_dataset(config.data, 'train')
    augmentation = None
    if config.augment != 'none':
        light = config.augment == 'light'
        augmentation = SSDAugmentation(model.input_size, model.pixel_mean_bgr,
                                       expand=not light, crop=not light,
                                       letterbox=model.letterbox)
    common = {'input_size': model.input_size, 'pixel_mean_bgr': model.pixel_mean_bgr,
              'pixel_std_bgr': model.pixel_std_bgr, 'letterbox': model.letterbox}
    train_set = CocoDataset.from_spec(train_spec, augmentation=augmentation, skip_empty=True,
                                      seed=config.seed, **common)
    if config.val_data is not None:
        val_spec = resolve_dataset(config.val_data, 'val')
    else:
        try:
            val_spec = resolve_dataset(config.data, 'val')
        except (ValueError, FileNotFoundError):
            val_spec = None
        if val_spec is not None and val_spec.annotations == train_spec.annotations:
            val_spec = None
    val_set = CocoDataset.from_spec(val_spec, **common) if val_spec is not None else None
    return train_set, val_set


def _check_resumable(config: TrainConfig, state: dict, context: DistributedContext) -> None:
    """Refuse to resume with settings that would change the computation."""
    stored = TrainConfig.from_dict(state['train_config'])
    changed = [f'{name} ({getattr(stored, name)!r} -> {getattr(config, name)!r})'
               for name in (f.name for f in fields(TrainConfig)) if name not in RUNTIME_FIELDS
               and getattr(stored, name) != getattr(config, name)]
    if changed:
        raise ValueError('cannot resume with different settings: ' + '; '.join(changed))
    if state['world_size'] != context.world_size:
        raise ValueError(f'the checkpoint was written by {state["world_size"]} processes; '
                         f'resume with as many (now {context.world_size})')


def _check_fresh(out_dir: Path) -> None:
    """Refuse to start a new run over an existing one."""
    existing = sorted((out_dir / 'checkpoints').glob('*.pt'))
    if existing or (out_dir / 'metrics.csv').exists():
        hint = f' (e.g. --resume {existing[-1]})' if existing else ''
        raise ValueError(f'{out_dir} already holds a training run; resume it{hint} or choose '
                         'another --out')


def _seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def train(config: TrainConfig, *, resume: Optional[str] = None,
          command: Optional[str] = None) -> TrainResult:
    """Train a model as ``config`` says; run under ``torchrun`` for several processes.

    Args:
        config: the run's settings. When resuming it must equal the checkpoint's
            ``train_config`` except for :data:`RUNTIME_FIELDS`.
        resume: a training checkpoint (``checkpoints/*.pt``) to continue exactly from.
        command: the command line, stored in the exported weights' metadata.

    Returns:
        The final iteration, whether a signal stopped the run, the files written and the last
        losses and validation metrics.
    """
    context = setup_distributed(config.device)
    per_process = config.batch_size // context.world_size
    if per_process * context.world_size != config.batch_size:
        raise ValueError(f'batch size {config.batch_size} does not split over '
                         f'{context.world_size} processes')
    state = load_training_state(resume) if resume else None
    if state is not None:
        _check_resumable(config, state, context)
    elif context.is_main:
        _check_fresh(Path(config.out_dir))
    barrier(context)
    # The same initial weights in every process; per-process random streams after that.
    _seed(config.seed)
    train_set, val_set = build_datasets(config)
    run = build_run(config, context, train_set, val_set, state,
                    seed_process=lambda: _seed(config.seed + context.rank))
    if state is not None:
        LOGGER.info('resuming %s at iteration %d', resume, run.start)
    if context.is_main:
        run.logger = _start_logging(run)
    data = batches(train_set, batch_size=per_process, context=context, seed=config.seed,
                   workers=config.workers, start=run.start)
    result = _loop(run, data)
    data.close()
    if result.iteration >= config.total_iterations:
        result.validation = run.run_validation(result.iteration) or result.validation
        result.weights = run.save_weights(result.iteration, result.validation, command)
    if run.logger is not None:
        run.logger.close()
        LOGGER.info('%s after %d iterations (%.2f it/s)%s',
                    'stopped' if result.interrupted else 'finished', result.iteration,
                    result.iterations_per_second,
                    f'; weights {result.weights}' if result.weights else '')
    barrier(context)
    cleanup(context)
    return result


def _start_logging(run: TrainingRun) -> MetricsLogger:
    """Create the run directory, its config file and the metrics logger (main process)."""
    config, world_size = run.config, run.context.world_size
    run.out_dir.mkdir(parents=True, exist_ok=True)
    (run.out_dir / 'train_config.json').write_text(json.dumps(config.to_dict(), indent=1))
    LOGGER.info('%s: %d training images, %s; %d iterations of batch %d (%d processes), '
                'peak lr %.3g, BN %s, AMP %s', config.data, len(run.train_set),
                'no validation' if run.val_set is None
                else f'{len(run.val_set)} validation images',
                config.total_iterations, config.batch_size, world_size, config.scaled_lr,
                'frozen' if run.frozen_bn else 'trained', 'on' if run.use_amp else 'off')
    return MetricsLogger(run.out_dir, ['loss', *run.criterion.loss_names, 'lr'],
                         start_iteration=run.start)


def _loop(run: TrainingRun, data: Iterator[Tuple[torch.Tensor, List[dict]]]) -> TrainResult:
    """Train until the last iteration or a stop signal; checkpoint and validate on the way."""
    from tqdm import tqdm

    config, logger = run.config, run.logger
    total = config.total_iterations
    scalars: Dict[str, float] = {}
    validation: Dict[str, float] = {}
    checkpoint = None
    iteration = run.start
    started = time.perf_counter()
    with StopOnSignal() as stop, tqdm(total=total, initial=run.start, disable=logger is None,
                                      desc='train', unit='it', dynamic_ncols=True) as progress:
        while iteration < total:
            images, targets = next(data)
            scalars, lr, stopping = run.step(images, targets, stop.signal_number is not None)
            iteration += 1
            if logger is not None:
                logger.log_train(iteration, dict(scalars, lr=lr))
                progress.set_postfix({k.replace('loss_', ''): f'{v:.3f}'
                                      for k, v in scalars.items()}, refresh=False)
                progress.update(1)
            if stopping or iteration % config.checkpoint_every == 0:
                checkpoint = run.write_checkpoint(iteration, 'interrupt' if stopping else 'iter')
            if stopping:
                break
            if config.val_every and iteration % config.val_every == 0 and iteration < total:
                validation = run.run_validation(iteration)
    seconds = time.perf_counter() - started
    return TrainResult(
        iteration=iteration, interrupted=iteration < total, weights=None, checkpoint=checkpoint,
        losses=scalars, validation=validation,
        iterations_per_second=(iteration - run.start) / seconds if seconds > 0 else 0.0,
        signal_number=stop.signal_number, rank=run.context.rank)
