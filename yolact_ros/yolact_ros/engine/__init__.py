"""Training: the training loop, its checkpoints, metrics and multi-process helpers."""

from yolact_ros.engine.state import load_training_state
from yolact_ros.engine.train_config import TrainConfig, TrainResult
from yolact_ros.engine.trainer import train

__all__ = ['TrainConfig', 'TrainResult', 'load_training_state', 'train']
