"""Train YOLACT: one plain training function, :func:`train`, and the small pieces it uses.

Schedule and settings are upstream v1.2's unless overridden (:class:`TrainConfig`): SGD with
momentum 0.9 and weight decay 5e-4; learning rate 1e-3 for a batch of 8, scaled by batch / 8;
linear warm-up from a tenth of it over 500 iterations (capped at a tenth of the run, so short runs
are not all warm-up); x0.1 at 35 %, 75 %, 87.5 % and 93.75 % of the run (upstream's 280k, 600k,
700k, 750k of 800k); 800k x 8 / batch iterations by default.

Batch norm: upstream trains BN (batch statistics and affine parameters) when each GPU holds at
least 6 images and *freezes* it (eval-mode statistics, no gradient) below that, since BN statistics
of tiny batches hurt; ``freeze_bn=None`` applies that rule per process, ``True`` / ``False``
forces it. All of YOLACT's BN layers are in the backbone.

Run directory (``out_dir``): ``checkpoints/iter_NNNNNNN.pt`` (every ``checkpoint_every``
iterations, the newest ``keep_checkpoints`` kept), ``checkpoints/interrupt_NNNNNNN.pt`` (on
SIGINT / SIGTERM), ``metrics.csv``, ``val.csv``, ``loss_curve.png``, ``tensorboard/``,
``train_config.json`` and, at the end, ``model.safetensors`` (the project weights format).
"""

from dataclasses import asdict, dataclass, field, fields
from functools import partial
import json
import logging
import math
from pathlib import Path
import random
import signal
import threading
import time
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from yolact_ros.checkpoint import (CheckpointError, load_model, load_state_dict_strict,
                                   save_checkpoint)
from yolact_ros.config import ModelConfig, PostprocessConfig
from yolact_ros.data import CocoDataset, collate, resolve_dataset, SSDAugmentation
from yolact_ros.engine.distributed import (average_across_processes, barrier, cleanup,
                                           DistributedContext, gather_objects,
                                           setup_distributed)
from yolact_ros.engine.metrics import MetricsLogger
from yolact_ros.engine.state import (capture_rng, load_training_state, prune_checkpoints,
                                     restore_rng, save_training_state)
from yolact_ros.losses import build_criterion, LossConfig, LossWeights, weighted_total
from yolact_ros.modeling import build_model, Yolact
from yolact_ros.modeling.deformable import DeformableConv2d

LOGGER = logging.getLogger(__name__)

# Upstream's steps (280k, 600k, 700k, 750k of 800k) as fractions of the run.
UPSTREAM_LR_STEPS = (0.35, 0.75, 0.875, 0.9375)
UPSTREAM_ITERATIONS_AT_BATCH_8 = 800_000
INIT_CHOICES = ('official', 'imagenet', 'none')
# ssd: upstream's full SSD augmentation; light: photometric distortion and mirror only (no
# expand / crop: short runs learn faster without the scale changes); none: resize only.
AUGMENT_CHOICES = ('ssd', 'light', 'none')
# Settings that may differ when a run is resumed: they do not change what is computed.
RUNTIME_FIELDS = ('out_dir', 'device', 'workers', 'checkpoint_every', 'keep_checkpoints',
                  'val_every', 'val_max_images', 'init', 'init_weights')
# Layers whose shape depends on the number of classes: class logits, semantic head and the last
# (1x1, K outputs) conv of YOLACT++'s mask re-scoring net.
CLASS_DEPENDENT_PREFIXES = ('prediction_head.conf_layer.', 'semantic_head.',
                            'maskiou_net.layers.10.')


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run.

    ``batch_size`` is the global batch (split evenly over ``torchrun`` processes); ``lr`` is the
    rate for a batch of 8 and is scaled by ``batch_size / 8``. ``val_every`` 0 validates only at
    the end (when there is validation data).
    """

    model: ModelConfig
    data: str
    out_dir: str = 'runs/train'
    val_data: Optional[str] = None
    losses: LossConfig = field(default_factory=LossConfig)
    iterations: Optional[int] = None
    batch_size: int = 8
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_iterations: Optional[int] = None
    warmup_factor: float = 0.1
    lr_steps: Tuple[float, ...] = UPSTREAM_LR_STEPS
    lr_gamma: float = 0.1
    init: str = 'imagenet'
    init_weights: Optional[str] = None
    freeze_bn: Optional[bool] = None
    sync_bn: bool = False
    amp: bool = True
    clip_grad_norm: Optional[float] = None
    augment: str = 'ssd'
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    val_every: int = 0
    val_max_images: Optional[int] = None
    workers: int = 2
    seed: int = 0
    device: str = 'auto'
    export_half: bool = False

    def __post_init__(self) -> None:
        positive = {'batch_size': self.batch_size, 'checkpoint_every': self.checkpoint_every,
                    'keep_checkpoints': self.keep_checkpoints}
        if self.iterations is not None:
            positive['iterations'] = self.iterations
        if self.val_max_images is not None:
            positive['val_max_images'] = self.val_max_images
        for name, value in positive.items():
            if value < 1:
                raise ValueError(f'{name} must be >= 1, got {value}')
        for name in ('val_every', 'workers', 'seed'):
            if getattr(self, name) < 0:
                raise ValueError(f'{name} must be >= 0, got {getattr(self, name)}')
        if not self.lr > 0:
            raise ValueError(f'lr must be > 0, got {self.lr}')
        if self.warmup_iterations is not None and self.warmup_iterations < 0:
            raise ValueError(f'warmup_iterations must be >= 0, got {self.warmup_iterations}')
        if not all(0.0 < step <= 1.0 for step in self.lr_steps):
            raise ValueError(f'lr_steps are fractions of the run in (0, 1], got {self.lr_steps}')
        if self.augment not in AUGMENT_CHOICES:
            raise ValueError(f'augment must be one of {AUGMENT_CHOICES}, got {self.augment!r}')
        if self.init not in INIT_CHOICES:
            raise ValueError(f'init must be one of {INIT_CHOICES}, got {self.init!r}')
        if (self.init == 'official') != (self.init_weights is not None):
            raise ValueError('init official needs init_weights (a checkpoint), and only it does; '
                             f'got init={self.init!r}, init_weights={self.init_weights!r}')
        if self.clip_grad_norm is not None and not self.clip_grad_norm > 0:
            raise ValueError(f'clip_grad_norm must be > 0, got {self.clip_grad_norm}')

    @property
    def total_iterations(self) -> int:
        """The run's length: ``iterations``, or upstream's 800k at batch 8 scaled to the batch."""
        if self.iterations is not None:
            return self.iterations
        return max(1, UPSTREAM_ITERATIONS_AT_BATCH_8 * 8 // self.batch_size)

    @property
    def warmup(self) -> int:
        """Warm-up iterations: ``warmup_iterations``, or min(500, a tenth of the run)."""
        if self.warmup_iterations is not None:
            return self.warmup_iterations
        return min(500, self.total_iterations // 10)

    @property
    def step_iterations(self) -> Tuple[int, ...]:
        """Iterations at which the learning rate is multiplied by ``lr_gamma``."""
        return tuple(round(step * self.total_iterations) for step in self.lr_steps)

    @property
    def scaled_lr(self) -> float:
        """The peak learning rate: ``lr * batch_size / 8``."""
        return self.lr * self.batch_size / 8

    def to_dict(self) -> dict:
        """Serialise to JSON-compatible values (stored in training checkpoints)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values['model'] = self.model.to_dict()
        values['losses'] = asdict(self.losses)
        values['lr_steps'] = list(self.lr_steps)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> 'TrainConfig':
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f'unknown training config fields: {unknown}')
        losses = dict(values.get('losses', {}))
        losses['weights'] = LossWeights(**losses.get('weights', {}))
        return cls(**dict(values, model=ModelConfig.from_dict(values['model']),
                          losses=LossConfig(**losses),
                          lr_steps=tuple(values.get('lr_steps', UPSTREAM_LR_STEPS))))


@dataclass
class TrainResult:
    """What a call of :func:`train` did."""

    iteration: int
    interrupted: bool
    weights: Optional[Path]
    checkpoint: Optional[Path]
    losses: Dict[str, float]
    validation: Dict[str, float]
    iterations_per_second: float
    signal_number: Optional[int] = None
    rank: int = 0


def learning_rate_factor(iteration: int, *, warmup: int, warmup_factor: float,
                         steps: Tuple[int, ...], gamma: float) -> float:
    """Multiplier of the peak learning rate after ``iteration`` completed iterations."""
    if iteration < warmup:
        return warmup_factor + (1.0 - warmup_factor) * iteration / warmup
    return gamma ** sum(iteration >= step for step in steps)


def uses_frozen_bn(config: TrainConfig, world_size: int) -> bool:
    """Upstream's rule unless forced: freeze BN when a process holds fewer than 6 images."""
    if config.freeze_bn is not None:
        return config.freeze_bn
    return config.batch_size // world_size < 6


def freeze_batchnorm(module: nn.Module) -> None:
    """Put every BatchNorm of ``module`` in eval mode and stop its parameters' gradients."""
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.eval()
            for parameter in layer.parameters():
                parameter.requires_grad_(False)


def set_train_mode(model: Yolact, frozen_bn: bool) -> None:
    """``model.train()``, keeping frozen BatchNorm layers in eval mode."""
    model.train()
    if frozen_bn:
        for layer in model.backbone.modules():
            if isinstance(layer, nn.modules.batchnorm._BatchNorm):
                layer.eval()


def load_imagenet_backbone(model: Yolact, backbone: str) -> str:
    """Fill the backbone with torchvision's ImageNet weights (downloaded on first use).

    The layers ImageNet weights cannot hold start from their own initialisation: channel
    attention (identity at init) and, in YOLACT++, each deformable conv's offset/mask branch and
    bias (torchvision's ``conv2`` has only a weight).
    """
    import torchvision

    if backbone not in torchvision.models.list_models(torchvision.models):
        raise CheckpointError(
            f'torchvision has no ImageNet weights for the {backbone} backbone; use --init none, '
            'or --init official with a checkpoint of this architecture')
    weights = torchvision.models.get_model_weights(backbone).IMAGENET1K_V1
    try:
        state = weights.get_state_dict(progress=True, check_hash=True)
    except Exception as error:  # URLError, HTTPError, OSError, RuntimeError (hash) ...
        raise CheckpointError(
            f'cannot download ImageNet weights for {backbone} from {weights.url}: {error}. '
            'Use --init none, or put the file in the torch hub cache '
            f'({torch.hub.get_dir()}/checkpoints)') from None
    state = {k: v for k, v in state.items() if not k.startswith('fc.')}
    deformable = tuple(prefix
                       for name, layer in model.backbone.named_modules()
                       if isinstance(layer, DeformableConv2d)
                       for prefix in (f'{name}.conv_offset_mask.', f'{name}.bias'))
    load_state_dict_strict(model.backbone, state, source=weights.url,
                           allowed_missing=('stage_attention.',) + deformable)
    return weights.url


def load_official_weights(model: Yolact, config: ModelConfig, path: str) -> str:
    """Fill ``model`` from an upstream ``.pth`` or project ``.safetensors`` checkpoint.

    Attention modules missing from the file start as identity. When the file's classes differ
    from the dataset's, the class-dependent layers (class logits, semantic head) keep their
    fresh initialisation and everything else is loaded.
    """
    source, source_config = load_model(path)
    structure = ('backbone', 'fpn_channels', 'num_prototypes', 'aspect_ratios')
    differing = [name for name in structure
                 if getattr(source_config, name) != getattr(config, name)]
    if differing:
        raise CheckpointError(
            f'{path} holds a {source_config.name} model, which differs from {config.name} in '
            + ', '.join(f'{name} ({getattr(source_config, name)} vs {getattr(config, name)})'
                        for name in differing))
    state = source.state_dict()
    allowed_missing: Tuple[str, ...] = ('backbone.stage_attention.',)
    if source_config.num_classes != config.num_classes:
        LOGGER.info('%s has %d classes, the dataset %d: class logits and semantic head start '
                    'fresh', path, source_config.num_classes, config.num_classes)
        state = {k: v for k, v in state.items() if not k.startswith(CLASS_DEPENDENT_PREFIXES)}
        allowed_missing += CLASS_DEPENDENT_PREFIXES
    load_state_dict_strict(model, state, source=path, allowed_missing=allowed_missing)
    return str(path)


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
                                       expand=not light, crop=not light)
    common = {'input_size': model.input_size, 'pixel_mean_bgr': model.pixel_mean_bgr,
              'pixel_std_bgr': model.pixel_std_bgr}
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


def validate(model: Yolact, config: ModelConfig, dataset: CocoDataset, device: torch.device,
             max_images: Optional[int]) -> Dict[str, float]:
    """COCO box and mask AP of ``model`` on ``dataset`` (leaves the model in eval mode)."""
    from yolact_ros.evaluation import evaluate_segmenter
    from yolact_ros.inference import Segmenter

    segmenter = Segmenter(model, config, device=str(device), postprocess=PostprocessConfig())
    result = evaluate_segmenter(segmenter, dataset, max_images=max_images)
    return {'box_AP': result.box['AP'], 'box_AP50': result.box['AP50'],
            'mask_AP': result.mask['AP'], 'mask_AP50': result.mask['AP50']}


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
    device = context.device
    per_process = config.batch_size // context.world_size
    if per_process * context.world_size != config.batch_size:
        raise ValueError(f'batch size {config.batch_size} does not split over '
                         f'{context.world_size} processes')
    out_dir = Path(config.out_dir)
    state = load_training_state(resume) if resume else None
    if state is not None:
        _check_resumable(config, state, context)
    elif context.is_main:
        _check_fresh(out_dir)
    barrier(context)

    # The same initial weights in every process; per-process random streams after that.
    _seed(config.seed)
    train_set, val_set = build_datasets(config)
    model_config = config.model.with_classes(train_set.class_names, train_set.category_ids)
    model = build_model(model_config)
    if state is None and config.init == 'imagenet':
        LOGGER.info('backbone from %s', load_imagenet_backbone(model, model_config.backbone))
    elif state is None and config.init == 'official':
        source = load_official_weights(model, model_config, config.init_weights)
        LOGGER.info('weights from %s', source)
    frozen_bn = uses_frozen_bn(config, context.world_size)
    if frozen_bn:
        freeze_batchnorm(model.backbone)
    elif config.sync_bn and context.distributed:
        if device.type != 'cuda':
            raise ValueError(f'sync_bn needs CUDA devices (torch SyncBatchNorm is GPU-only); '
                             f'this run is on {device}')
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(device)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(parameters, lr=config.scaled_lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(
        learning_rate_factor, warmup=config.warmup, warmup_factor=config.warmup_factor,
        steps=config.step_iterations, gamma=config.lr_gamma))
    use_amp = config.amp and device.type == 'cuda'
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp)
    criterion = build_criterion(config.losses, mask_scorer=model.maskiou_net)  # YOLACT++ only
    start = 0
    if state is not None:
        model.load_state_dict(state['model'])
        optimizer.load_state_dict(state['optimizer'])
        scheduler.load_state_dict(state['scheduler'])
        scaler.load_state_dict(state['scaler'])
        restore_rng(state['rng'][context.rank])
        start = int(state['iteration'])
        LOGGER.info('resuming %s at iteration %d', resume, start)
    else:
        _seed(config.seed + context.rank)
    network = model
    if context.distributed:
        network = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == 'cuda' else None)

    total = config.total_iterations
    data = batches(train_set, batch_size=per_process, context=context, seed=config.seed,
                   workers=config.workers, start=start)
    batches_per_epoch = math.ceil(len(train_set) / context.world_size) // per_process
    checkpoint_dir = out_dir / 'checkpoints'
    logger = None
    if context.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / 'train_config.json').write_text(json.dumps(config.to_dict(), indent=1))
        logger = MetricsLogger(out_dir, ['loss', *criterion.loss_names, 'lr'],
                               start_iteration=start)
        LOGGER.info('%s: %d training images, %s; %d iterations of batch %d (%d processes), '
                    'peak lr %.3g, BN %s, AMP %s', config.data, len(train_set),
                    'no validation' if val_set is None else f'{len(val_set)} validation images',
                    total, config.batch_size, context.world_size, config.scaled_lr,
                    'frozen' if frozen_bn else 'trained', 'on' if use_amp else 'off')

    def write_checkpoint(iteration: int, kind: str) -> Optional[Path]:
        rng = gather_objects(capture_rng(), context)  # every process takes part
        if not context.is_main:
            return None
        path = save_training_state(checkpoint_dir / f'{kind}_{iteration:07d}.pt', {
            'iteration': iteration, 'model': model.state_dict(),
            'optimizer': optimizer.state_dict(), 'scheduler': scheduler.state_dict(),
            'scaler': scaler.state_dict(), 'rng': rng,
            'data': {'epoch': iteration // batches_per_epoch, 'seed': config.seed,
                     'batch_in_epoch': iteration % batches_per_epoch,
                     'batches_per_epoch': batches_per_epoch},
            'train_config': config.to_dict(), 'model_config': model_config.to_dict(),
            'world_size': context.world_size})
        if kind == 'iter':
            prune_checkpoints(checkpoint_dir, 'iter_*.pt', config.keep_checkpoints)
        logger.plot(title=f'{model_config.name} on {config.data}')
        return path

    def run_validation(iteration: int) -> Dict[str, float]:
        metrics = {}
        if context.is_main and val_set is not None:
            metrics = validate(model, model_config, val_set, device, config.val_max_images)
            logger.log_val(iteration, metrics)
            LOGGER.info('iteration %d: box AP %.4f, mask AP %.4f', iteration,
                        metrics['box_AP'], metrics['mask_AP'])
        barrier(context)
        return metrics

    from tqdm import tqdm

    scalars: Dict[str, float] = {}
    validation: Dict[str, float] = {}
    checkpoint = None
    iteration = start
    started = time.perf_counter()
    with StopOnSignal() as stop, tqdm(total=total, initial=start, disable=not context.is_main,
                                      desc='train', unit='it', dynamic_ncols=True) as progress:
        while iteration < total:
            images, targets = next(data)
            set_train_mode(model, frozen_bn)
            with torch.autocast(device.type, enabled=use_amp):
                outputs = network(images.to(device, non_blocking=True))
            losses = criterion(outputs, targets)  # float32, outside autocast
            loss = weighted_total(losses, config.losses.weights)
            # One all-reduce carries the terms (for logging) and every process's stop request.
            reduced = average_across_processes(torch.stack(
                [loss.detach(), *(v.detach() for v in losses.values()),
                 torch.tensor(float(stop.signal_number is not None), device=device)]), context)
            scalars = dict(zip(['loss', *losses], reduced[:-1].tolist()))
            if not all(math.isfinite(value) for value in scalars.values()):
                raise FloatingPointError(f'non-finite loss at iteration {iteration + 1}: '
                                         + ', '.join(f'{k} {v:.4g}' for k, v in scalars.items()))
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if config.clip_grad_norm is not None:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(parameters, config.clip_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            lr = optimizer.param_groups[0]['lr']
            scheduler.step()
            iteration += 1

            if logger is not None:
                logger.log_train(iteration, dict(scalars, lr=lr))
                progress.set_postfix({k.replace('loss_', ''): f'{v:.3f}'
                                      for k, v in scalars.items()}, refresh=False)
                progress.update(1)
            stopping = reduced[-1].item() > 0
            if stopping or iteration % config.checkpoint_every == 0:
                checkpoint = write_checkpoint(iteration, 'interrupt' if stopping else 'iter')
            if stopping:
                break
            if config.val_every and iteration % config.val_every == 0 and iteration < total:
                validation = run_validation(iteration)
    data.close()
    seconds = time.perf_counter() - started
    speed = (iteration - start) / seconds if seconds > 0 else 0.0

    weights = None
    if iteration >= total:
        validation = run_validation(iteration) or validation
        if context.is_main:
            metadata = {'training_command': command or '', 'iterations': str(iteration),
                        'dataset': config.data, 'train_config': json.dumps(config.to_dict())}
            metadata.update({f'val_{k}': f'{v:.6f}' for k, v in validation.items()})
            weights = save_checkpoint(out_dir / 'model.safetensors', model, model_config,
                                      half=config.export_half, metadata=metadata)
            logger.plot(title=f'{model_config.name} on {config.data}')
    if logger is not None:
        logger.close()
    interrupted = iteration < total
    if context.is_main:
        LOGGER.info('%s after %d iterations (%.2f it/s)%s',
                    'stopped' if interrupted else 'finished', iteration, speed,
                    f'; weights {weights}' if weights else '')
    barrier(context)
    cleanup(context)
    return TrainResult(iteration=iteration, interrupted=interrupted, weights=weights,
                       checkpoint=checkpoint, losses=scalars, validation=validation,
                       iterations_per_second=speed, signal_number=stop.signal_number,
                       rank=context.rank)
