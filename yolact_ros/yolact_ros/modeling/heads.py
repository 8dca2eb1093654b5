"""Protonet and the prediction head shared by all pyramid levels."""

from typing import Sequence, Tuple

import torch
from torch import nn, Tensor
import torch.nn.functional as F


class Upsample(nn.Module):
    """Bilinear upsampling as a module, so the protonet stays one ``Sequential``."""

    def __init__(self, scale_factor: float) -> None:
        super().__init__()
        self.scale_factor = scale_factor

    def forward(self, x: Tensor) -> Tensor:
        """Upsample ``Tensor[N, C, H, W]`` by ``scale_factor``."""
        return F.interpolate(x, scale_factor=self.scale_factor, mode='bilinear',
                             align_corners=False)


def build_protonet(channels: int, num_prototypes: int) -> nn.Sequential:
    """Upstream's protonet: 3x(3x3 conv, ReLU), x2 upsample, ReLU, 3x3 conv, ReLU, 1x1 conv.

    Indices match upstream's state-dict keys (``proto_net.{0,2,4,8,10}``).
    """
    def conv3x3() -> nn.Conv2d:
        return nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    return nn.Sequential(
        conv3x3(), nn.ReLU(inplace=True), conv3x3(), nn.ReLU(inplace=True),
        conv3x3(), nn.ReLU(inplace=True), Upsample(2.0), nn.ReLU(inplace=True),
        conv3x3(), nn.ReLU(inplace=True), nn.Conv2d(channels, num_prototypes, kernel_size=1))


class PredictionHead(nn.Module):
    """Box offsets, class logits and mask coefficients for every anchor of one level."""

    def __init__(self, channels: int, *, num_anchors: int, num_classes: int,
                 num_prototypes: int) -> None:
        super().__init__()
        self.num_classes = num_classes  # includes background
        self.num_prototypes = num_prototypes
        self.upfeature = nn.Sequential(nn.Conv2d(channels, channels, kernel_size=3, padding=1),
                                       nn.ReLU(inplace=True))
        self.bbox_layer = nn.Conv2d(channels, num_anchors * 4, kernel_size=3, padding=1)
        self.conf_layer = nn.Conv2d(channels, num_anchors * num_classes, kernel_size=3,
                                    padding=1)
        self.mask_layer = nn.Conv2d(channels, num_anchors * num_prototypes, kernel_size=3,
                                    padding=1)

    def forward(self, features: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Predict for ``Tensor[N, C, H, W]``.

        Returns:
            loc ``Tensor[N, HWA, 4]``, conf logits ``Tensor[N, HWA, K+1]``, mask coefficients
            ``Tensor[N, HWA, M]`` in [-1, 1].
        """
        x = self.upfeature(features)
        batch = x.shape[0]
        # (N, A*4, H, W) -> (N, H, W, A*4) -> (N, HWA, 4); likewise for conf and coefficients.
        loc = self.bbox_layer(x).permute(0, 2, 3, 1).reshape(batch, -1, 4)
        conf = self.conf_layer(x).permute(0, 2, 3, 1).reshape(batch, -1, self.num_classes)
        coefficients = self.mask_layer(x).permute(0, 2, 3, 1).reshape(
            batch, -1, self.num_prototypes)
        return loc, conf, torch.tanh(coefficients)


class MaskIoUNet(nn.Module):
    """YOLACT++'s mask re-scoring head: the IoU each mask would have with its object, per class.

    Five 3x3 stride-2 convs without padding (1 -> 8 -> 16 -> 32 -> 64 -> 128 channels), a 1x1
    conv to K classes, ReLU after every conv including the last, global max pooling. Its input is
    the cropped soft masks at prototype resolution; it runs in the postprocessor and the
    criterion, never in the network's ``forward``.
    """

    def __init__(self, num_classes: int,
                 channels: Sequence[int] = (8, 16, 32, 64, 128)) -> None:
        super().__init__()
        layers = []
        in_channels = 1
        for out_channels in channels:
            layers += [nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2),
                       nn.ReLU(inplace=True)]
            in_channels = out_channels
        layers += [nn.Conv2d(in_channels, num_classes, kernel_size=1), nn.ReLU(inplace=True)]
        self.layers = nn.Sequential(*layers)

    def forward(self, masks: Tensor) -> Tensor:
        """Score ``Tensor[D, 1, Hp, Wp]`` soft masks; returns ``Tensor[D, K]`` predicted IoUs."""
        scores = self.layers(masks)  # (D, K, h, w)
        return scores.amax(dim=(2, 3))  # global max pool: (D, K, h, w) -> (D, K)
