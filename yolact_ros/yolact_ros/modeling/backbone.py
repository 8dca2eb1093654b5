"""ResNet backbone (torchvision's) returning C2..C5, with optional channel attention."""

from typing import List

from torch import nn, Tensor
import torchvision

from yolact_ros.config import AttentionConfig
from yolact_ros.modeling.attention import ChannelAttention

RESNETS = {
    'resnet18': torchvision.models.resnet18,
    'resnet34': torchvision.models.resnet34,
    'resnet50': torchvision.models.resnet50,
    'resnet101': torchvision.models.resnet101,
}


class ResNetBackbone(nn.Module):
    """torchvision ResNet without its classifier; ``forward`` returns the four stage outputs.

    Attention modules live under ``stage_attention`` so their keys can never collide with (or be
    silently filtered as) upstream's backbone keys.
    """

    def __init__(self, name: str, attention: AttentionConfig) -> None:
        super().__init__()
        resnet = RESNETS[name](weights=None)
        self.conv1, self.bn1, self.relu, self.maxpool = (
            resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4)
        self.out_channels = [self._stage_channels(stage) for stage in self.stages]
        self.stage_attention = None
        if attention.enabled:
            self.stage_attention = nn.ModuleList(
                ChannelAttention(channels, attention.reduction, shared_mlp=attention.shared_mlp)
                for channels in self.out_channels)

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
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        outputs = []
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if self.stage_attention is not None:
                x = self.stage_attention[index](x)
            outputs.append(x)
        return outputs


def build_backbone(name: str, attention: AttentionConfig) -> ResNetBackbone:
    """Build the named backbone (see ``RESNETS``)."""
    if name not in RESNETS:
        raise ValueError(f'unknown backbone {name!r}; expected one of {sorted(RESNETS)}')
    return ResNetBackbone(name, attention)
