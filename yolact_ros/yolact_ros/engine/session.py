"""One training run's objects, and the steps :func:`~yolact_ros.engine.trainer.train` takes.

:func:`build_run` turns a :class:`~yolact_ros.engine.train_config.TrainConfig` (and, when
resuming, a training checkpoint) into a :class:`TrainingRun`: model, optimizer, schedule, loss and
metrics logger. Its methods are the loop's pieces: one optimisation step, validation, training
checkpoints and the final weights.

Batch norm: upstream trains BN (batch statistics and affine parameters) when each GPU holds at
least 6 images and *freezes* it (eval-mode statistics, no gradient) below that, since BN statistics
of tiny batches hurt; ``freeze_bn=None`` applies that rule per process, ``True`` / ``False``
forces it. All of YOLACT's BN layers are in the backbone.
"""

from dataclasses import dataclass
from functools import partial
import json
import logging
import math
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from yolact_ros.checkpoint import load_imagenet_backbone, load_official_weights, save_checkpoint
from yolact_ros.config import ModelConfig, PostprocessConfig
from yolact_ros.data import CocoDataset
from yolact_ros.engine.distributed import (average_across_processes, barrier,
                                           DistributedContext, gather_objects)
from yolact_ros.engine.metrics import MetricsLogger
from yolact_ros.engine.state import (capture_rng, prune_checkpoints, restore_rng,
                                     save_training_state)
from yolact_ros.engine.train_config import learning_rate_factor, TrainConfig
from yolact_ros.losses import build_criterion, weighted_total
from yolact_ros.modeling import build_model, Yolact

LOGGER = logging.getLogger(__name__)


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


def validate(model: Yolact, config: ModelConfig, dataset: CocoDataset, device: torch.device,
             max_images: Optional[int]) -> Dict[str, float]:
    """COCO box and mask AP of ``model`` on ``dataset`` (leaves the model in eval mode)."""
    from yolact_ros.evaluation import evaluate_segmenter
    from yolact_ros.inference import Segmenter

    segmenter = Segmenter(model, config, device=str(device), postprocess=PostprocessConfig())
    result = evaluate_segmenter(segmenter, dataset, max_images=max_images)
    return {'box_AP': result.box['AP'], 'box_AP50': result.box['AP50'],
            'mask_AP': result.mask['AP'], 'mask_AP50': result.mask['AP50']}


@dataclass
class TrainingRun:
    """The objects of one training run (see :func:`build_run`) and the loop's steps."""

    config: TrainConfig
    context: DistributedContext
    model_config: ModelConfig
    model: Yolact
    network: nn.Module  # the model, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    criterion: nn.Module
    parameters: List[nn.Parameter]
    frozen_bn: bool
    use_amp: bool
    train_set: CocoDataset
    val_set: Optional[CocoDataset]
    start: int
    logger: Optional[MetricsLogger] = None  # the main process's

    @property
    def out_dir(self) -> Path:
        """The run directory."""
        return Path(self.config.out_dir)

    @property
    def batches_per_epoch(self) -> int:
        """Batches each process takes per pass over its share of the training set."""
        per_process = self.config.batch_size // self.context.world_size
        return math.ceil(len(self.train_set) / self.context.world_size) // per_process

    def step(self, images: torch.Tensor, targets: List[dict],
             stop_requested: bool) -> Tuple[Dict[str, float], float, bool]:
        """Run one optimisation step on a batch.

        Returns:
            The loss terms averaged over processes (``loss`` and each named loss), the learning
            rate used, and whether any process asked to stop.

        Raises:
            FloatingPointError: a loss term is not finite; the message names every term.
        """
        config, device = self.config, self.context.device
        set_train_mode(self.model, self.frozen_bn)
        with torch.autocast(device.type, enabled=self.use_amp):
            outputs = self.network(images.to(device, non_blocking=True))
        losses = self.criterion(outputs, targets)  # float32, outside autocast
        loss = weighted_total(losses, config.losses.weights)
        # One all-reduce carries the terms (for logging) and every process's stop request.
        reduced = average_across_processes(torch.stack(
            [loss.detach(), *(v.detach() for v in losses.values()),
             torch.tensor(float(stop_requested), device=device)]), self.context)
        scalars = dict(zip(['loss', *losses], reduced[:-1].tolist()))
        if not all(math.isfinite(value) for value in scalars.values()):
            iteration = self.scheduler.last_epoch + 1
            raise FloatingPointError(f'non-finite loss at iteration {iteration}: '
                                     + ', '.join(f'{k} {v:.4g}' for k, v in scalars.items()))
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if config.clip_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.parameters, config.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        lr = self.optimizer.param_groups[0]['lr']
        self.scheduler.step()
        return scalars, lr, reduced[-1].item() > 0

    def write_checkpoint(self, iteration: int, kind: str) -> Optional[Path]:
        """Write ``checkpoints/{kind}_NNNNNNN.pt`` (main process; every process takes part)."""
        rng = gather_objects(capture_rng(), self.context)
        if not self.context.is_main:
            return None
        checkpoint_dir = self.out_dir / 'checkpoints'
        per_epoch = self.batches_per_epoch
        path = save_training_state(checkpoint_dir / f'{kind}_{iteration:07d}.pt', {
            'iteration': iteration, 'model': self.model.state_dict(),
            'optimizer': self.optimizer.state_dict(), 'scheduler': self.scheduler.state_dict(),
            'scaler': self.scaler.state_dict(), 'rng': rng,
            'data': {'epoch': iteration // per_epoch, 'seed': self.config.seed,
                     'batch_in_epoch': iteration % per_epoch, 'batches_per_epoch': per_epoch},
            'train_config': self.config.to_dict(), 'model_config': self.model_config.to_dict(),
            'world_size': self.context.world_size})
        if kind == 'iter':
            prune_checkpoints(checkpoint_dir, 'iter_*.pt', self.config.keep_checkpoints)
        self.logger.plot(title=self._title)
        return path

    def run_validation(self, iteration: int) -> Dict[str, float]:
        """Validate on the main process (if there is validation data) and log the metrics."""
        metrics = {}
        if self.context.is_main and self.val_set is not None:
            metrics = validate(self.model, self.model_config, self.val_set, self.context.device,
                               self.config.val_max_images)
            self.logger.log_val(iteration, metrics)
            LOGGER.info('iteration %d: box AP %.4f, mask AP %.4f', iteration,
                        metrics['box_AP'], metrics['mask_AP'])
        barrier(self.context)
        return metrics

    def save_weights(self, iteration: int, validation: Dict[str, float],
                     command: Optional[str]) -> Optional[Path]:
        """Write ``model.safetensors`` with the run's metadata (main process)."""
        if not self.context.is_main:
            return None
        config = self.config
        metadata = {'training_command': command or '', 'iterations': str(iteration),
                    'dataset': config.data, 'train_config': json.dumps(config.to_dict())}
        metadata.update({f'val_{k}': f'{v:.6f}' for k, v in validation.items()})
        weights = save_checkpoint(self.out_dir / 'model.safetensors', self.model,
                                  self.model_config, half=config.export_half, metadata=metadata)
        self.logger.plot(title=self._title)
        return weights

    @property
    def _title(self) -> str:
        return f'{self.model_config.name} on {self.config.data}'


def build_model_for(config: TrainConfig, context: DistributedContext,
                    train_set: CocoDataset, resuming: bool) -> Tuple[Yolact, ModelConfig, bool]:
    """Build the model for the dataset's classes, initialise it, and set BatchNorm up.

    Returns:
        ``(model on the device, its config, whether BatchNorm is frozen)``.
    """
    model_config = config.model.with_classes(train_set.class_names, train_set.category_ids)
    model = build_model(model_config)
    if not resuming and config.init == 'imagenet':
        LOGGER.info('backbone from %s', load_imagenet_backbone(model, model_config.backbone))
    elif not resuming and config.init == 'official':
        LOGGER.info('weights from %s',
                    load_official_weights(model, model_config, config.init_weights))
    frozen_bn = uses_frozen_bn(config, context.world_size)
    if frozen_bn:
        freeze_batchnorm(model.backbone)
    elif config.sync_bn and context.distributed:
        if context.device.type != 'cuda':
            raise ValueError(f'sync_bn needs CUDA devices (torch SyncBatchNorm is GPU-only); '
                             f'this run is on {context.device}')
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model.to(context.device), model_config, frozen_bn


def build_run(config: TrainConfig, context: DistributedContext, train_set: CocoDataset,
              val_set: Optional[CocoDataset], state: Optional[dict],
              seed_process: callable) -> TrainingRun:
    """Build the run's objects; with ``state`` (a training checkpoint), restore them from it.

    ``seed_process`` seeds this process's random streams for a fresh run (a resumed run
    restores its streams from ``state`` instead).
    """
    device = context.device
    model, model_config, frozen_bn = build_model_for(config, context, train_set,
                                                     state is not None)
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
    else:
        seed_process()
    network = model
    if context.distributed:
        # YOLACT++'s mask scorer runs in the criterion, outside DDP's forward, and gets no
        # gradient in a step without usable masks (or at loss weight 0): DDP must expect that.
        network = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == 'cuda' else None,
            find_unused_parameters=model_config.mask_rescoring)
    return TrainingRun(
        config=config, context=context, model_config=model_config, model=model,
        network=network, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
        criterion=criterion, parameters=parameters, frozen_bn=frozen_bn, use_amp=use_amp,
        train_set=train_set, val_set=val_set, start=start)
