"""Training checkpoints: everything a run needs to continue exactly, readable with weights_only.

A checkpoint is a dict of tensors and plain containers (no pickled classes), so
``torch.load(path, weights_only=True)`` reads it::

    {'format': 'yolact_ros-train', 'version': 1, 'iteration': int,
     'model': state_dict, 'optimizer': ..., 'scheduler': ..., 'scaler': ...,
     'rng': [per-rank {'torch', 'numpy', 'python', 'cuda'}],
     'data': {'epoch', 'batch_in_epoch', 'batches_per_epoch', 'seed'},
     'train_config': dict, 'model_config': dict, 'world_size': int}

Files are written atomically (temporary file, fsync, rename) by
:func:`yolact_ros.checkpoint.atomic_write_bytes`.
"""

import io
import os
from pathlib import Path
import random
from typing import Dict, List, Union

import numpy as np
import torch

from yolact_ros.checkpoint import atomic_write_bytes, CheckpointError, load_tensors_only

FORMAT_NAME = 'yolact_ros-train'
FORMAT_VERSION = 1
REQUIRED_KEYS = ('iteration', 'model', 'optimizer', 'scheduler', 'scaler', 'rng', 'data',
                 'train_config', 'model_config', 'world_size')
PathLike = Union[str, os.PathLike]


def capture_rng() -> Dict[str, object]:
    """Return this process's torch, numpy, python and CUDA RNG states as plain values."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {
        'torch': torch.get_rng_state(),
        'numpy': {'kind': kind, 'keys': torch.from_numpy(keys.astype(np.int64)),
                  'position': int(position), 'has_gauss': int(has_gauss),
                  'cached_gaussian': float(cached)},
        'python': random.getstate(),
        'cuda': torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(state: Dict[str, object]) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(state['torch'])
    numpy_state = state['numpy']
    np.random.set_state((numpy_state['kind'], numpy_state['keys'].numpy().astype(np.uint32),
                         numpy_state['position'], numpy_state['has_gauss'],
                         numpy_state['cached_gaussian']))
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    if state['cuda'] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def save_training_state(path: PathLike, state: dict) -> Path:
    """Write a training checkpoint atomically; ``state`` holds :data:`REQUIRED_KEYS`."""
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise ValueError(f'training state lacks {missing}')
    buffer = io.BytesIO()
    torch.save(dict(state, format=FORMAT_NAME, version=FORMAT_VERSION), buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load_training_state(path: PathLike) -> dict:
    """Read a training checkpoint with ``weights_only=True``; errors name the file."""
    state = load_tensors_only(path, 'training checkpoint')
    if not isinstance(state, dict) or state.get('format') != FORMAT_NAME:
        raise CheckpointError(f'{path} is not a yolact_ros training checkpoint (a model weights '
                              'file cannot be resumed; use --init official --weights for it)')
    if state.get('version') != FORMAT_VERSION:
        raise CheckpointError(f'{path}: training checkpoint version {state.get("version")}, '
                              f'this code reads version {FORMAT_VERSION}')
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise CheckpointError(f'{path}: training checkpoint lacks {missing}')
    return state


def prune_checkpoints(directory: Path, pattern: str, keep: int) -> List[Path]:
    """Delete all but the ``keep`` newest files matching ``pattern``; return the deleted ones."""
    files = sorted(directory.glob(pattern))
    stale = files[:-keep] if keep > 0 else files
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
