"""A training run's settings (:class:`TrainConfig`), its result and its learning-rate schedule.

Schedule and settings are upstream v1.2's unless overridden: SGD with momentum 0.9 and weight
decay 5e-4; learning rate 1e-3 for a batch of 8, scaled by batch / 8; linear warm-up from a
tenth of it over 500 iterations (capped at a tenth of the run, so short runs are not all
warm-up); x0.1 at 35 %, 75 %, 87.5 % and 93.75 % of the run (upstream's 280k, 600k, 700k, 750k
of 800k); 800k x 8 / batch iterations by default.
"""

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Dict, Optional, Tuple

from yolact_ros.config import ModelConfig
from yolact_ros.losses import LossConfig, LossWeights

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
