"""Network modules: backbone, attention, FPN, heads and the assembled YOLACT model."""

from yolact_ros.modeling.attention import ChannelAttention
from yolact_ros.modeling.yolact import build_model, Yolact

__all__ = ['build_model', 'ChannelAttention', 'Yolact']
