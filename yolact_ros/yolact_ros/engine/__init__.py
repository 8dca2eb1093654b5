"""Training: the training loop, its checkpoints, metrics and multi-process helpers."""

from yolact_ros.engine.state import load_training_state
from yolact_ros.engine.trainer import train, TrainConfig, TrainResult

__all__ = ['TrainConfig', 'TrainResult', 'load_training_state', 'train']
