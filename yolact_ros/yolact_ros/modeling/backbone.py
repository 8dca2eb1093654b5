"""Backbones returning their stage outputs, with optional channel attention after each stage.

ResNets come from torchvision (optionally with deformable ``conv2`` in chosen blocks, YOLACT++);
DarkNet-53 is in :mod:`yolact_ros.modeling.darknet`.
"""

from typing import List, Sequence, Union

from torch import nn, Tensor
import torchvision

from yolact_ros.config import AttentionConfig
from yolact_ros.modeling.attention import build_stage_attention, run_stages
from yolact_ros.modeling.darknet import DarkNetBackbone
from yolact_ros.modeling.deformable import DeformableConv2d

RESNETS = {
    'resnet18': torchvision.models.resnet18,
    'resnet34': torchvision.models.resnet34,
    'resnet50': torchvision.models.resnet50,
    'resnet101': torchvision.models.resnet101,
}


class ResNetBackbone(nn.Module):
    """torchvision ResNet without its classifier; ``forward`` returns the four stage outputs.

    ``deformable_layers[s]`` lists the blocks of stage ``s`` whose 3x3 ``conv2`` becomes a
    :class:`DeformableConv2d` (YOLACT++). Attention modules live under ``stage_attention`` so
    their keys can never collide with (or be silently filtered as) upstream's backbone keys.
    """

    def __init__(self, name: str, attention: AttentionConfig, *,
                 deformable_layers: Sequence[Sequence[int]] = ()) -> None:
        super().__init__()
        resnet = RESNETS[name](weights=None)
        self.conv1, self.bn1, self.relu, self.maxpool = (
            resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4)
        for stage_index, block_indices in enumerate(deformable_layers):
            stage = self.stages[stage_index]
            for block_index in block_indices:
                if not 0 <= block_index < len(stage):
                    raise ValueError(
                        f'deformable block {block_index} of stage {stage_index} does not exist: '
                        f'{name} stage {stage_index} has {len(stage)} blocks')
                block = stage[block_index]
                block.conv2 = DeformableConv2d.from_conv(block.conv2)
        self.out_channels = [self._stage_channels(stage) for stage in self.stages]
        self.stage_attention = build_stage_attention(self.out_channels, attention)

    @property
    def stages(self) -> List[nn.Sequential]:
        """The four residual stages, in order."""
        return [self.layer1, self.layer2, self.layer3, self.layer4]

    @staticmethod
    def _stage_channels(stage: nn.Sequential) -> int:
        last_block = stage[-1]
        last_bn = last_block.bn3 if hasattr(last_block, 'bn3') else last_block.bn2
        return last_bn.num_features

    def forward(self, images: Tensor) -> List[Tensor]:
        """Return C2..C5 for ``Tensor[N, 3, H, W]``: strides 4, 8, 16, 32."""
        stem = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        return run_stages(self.stages, self.stage_attention, stem)


def build_backbone(name: str, attention: AttentionConfig, *,
                   deformable_layers: Sequence[Sequence[int]] = ()
                   ) -> Union[ResNetBackbone, DarkNetBackbone]:
    """Build the named backbone (a key of ``RESNETS``, or ``darknet53``).

    Its ``out_channels`` lists the channels of each stage output; the FPN takes the last three.
    """
    if name == 'darknet53':
        if deformable_layers:
            raise ValueError('deformable_layers is only supported for ResNet backbones')
        return DarkNetBackbone(attention)
    if name not in RESNETS:
        raise ValueError(
            f'unknown backbone {name!r}; expected one of {sorted(RESNETS) + ["darknet53"]}')
    return ResNetBackbone(name, attention, deformable_layers=deformable_layers)
