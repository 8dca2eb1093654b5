"""The YOLACT network: backbone, FPN, protonet, shared prediction head, semantic head.

YOLACT++ is the same network with deformable convs in the backbone, more anchors per location
and a mask re-scoring head (``maskiou_net``) that the postprocessor and the criterion run.
"""

from typing import Dict, List, Optional, Tuple

import torch
from torch import nn, Tensor
import torch.nn.functional as F

from yolact_ros.config import ModelConfig
from yolact_ros.modeling.backbone import build_backbone
from yolact_ros.modeling.fpn import FPN
from yolact_ros.modeling.heads import build_protonet, MaskIoUNet, PredictionHead
from yolact_ros.ops.anchors import make_priors


class Yolact(nn.Module):
    """YOLACT; ``forward`` returns raw outputs only (postprocessing and losses live elsewhere).

    Outputs (``P`` priors over the five levels, ``K`` foreground classes, ``M`` prototypes):
        ``loc`` ``Tensor[N, P, 4]`` box offsets; ``conf`` ``Tensor[N, P, K+1]`` class logits
        (0 = background); ``mask_coef`` ``Tensor[N, P, M]`` (after tanh); ``proto``
        ``Tensor[N, Hp, Wp, M]`` prototypes (after ReLU); ``priors`` ``Tensor[P, 4]`` relative
        (cx, cy, w, h); in training mode also ``segm`` ``Tensor[N, K, H3, W3]`` semantic logits.

    ``maskiou_net`` (YOLACT++, else ``None``) is held here for its weights but is not run by
    ``forward``: it scores the masks the postprocessor or the criterion assemble.
    """

    def __init__(self, *, backbone: nn.Module, fpn: FPN, protonet: nn.Sequential,
                 prediction_head: PredictionHead, semantic_head: nn.Conv2d,
                 anchor_scales: Tuple[float, ...], aspect_ratios: Tuple[float, ...],
                 square_anchors: bool, input_size: int,
                 anchor_scale_factors: Tuple[float, ...] = (1.0,),
                 maskiou_net: Optional[MaskIoUNet] = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.fpn = fpn
        self.proto_net = protonet
        self.prediction_head = prediction_head
        self.semantic_head = semantic_head
        self.anchor_scales = tuple(anchor_scales)
        self.aspect_ratios = tuple(aspect_ratios)
        self.square_anchors = square_anchors
        self.anchor_scale_factors = tuple(anchor_scale_factors)
        self.maskiou_net = maskiou_net
        self.input_size = input_size
        self._priors_cache: Dict[Tuple, Tensor] = {}

    # Kept out of torch.compile's graphs: built on the CPU once per size, they are a cached
    # input, not work to compile (inductor moved only some of the CPU constructors to the GPU
    # and failed on the cat of both: "found two different devices cuda:0, cpu").
    @torch.compiler.disable
    def priors(self, feature_sizes: List[Tuple[int, int]], device: torch.device) -> Tensor:
        """Return ``Tensor[P, 4]`` priors for these level sizes, cached per size and device."""
        key = (tuple(feature_sizes), str(device))
        if key not in self._priors_cache:
            self._priors_cache[key] = make_priors(
                feature_sizes, self.anchor_scales, self.aspect_ratios, self.input_size,
                square=self.square_anchors, scale_factors=self.anchor_scale_factors).to(device)
        return self._priors_cache[key]

    def forward(self, images: Tensor) -> Dict[str, Tensor]:
        """Run the network on normalised ``Tensor[N, 3, S, S]`` RGB images."""
        stage_outputs = self.backbone(images)  # C2..C5 (ResNet) or C1..C5 (DarkNet)
        pyramid = self.fpn(stage_outputs[-3:])  # C3..C5 -> P3..P7

        proto = F.relu(self.proto_net(pyramid[0]))
        proto = proto.permute(0, 2, 3, 1)  # (N, M, Hp, Wp) -> (N, Hp, Wp, M)

        locs, confs, coefficients = [], [], []
        for level in pyramid:
            loc, conf, coef = self.prediction_head(level)
            locs.append(loc)
            confs.append(conf)
            coefficients.append(coef)
        feature_sizes = [(int(level.shape[2]), int(level.shape[3])) for level in pyramid]
        outputs = {
            'loc': torch.cat(locs, dim=1),
            'conf': torch.cat(confs, dim=1),
            'mask_coef': torch.cat(coefficients, dim=1),
            'proto': proto,
            'priors': self.priors(feature_sizes, images.device),
        }
        if self.training:
            outputs['segm'] = self.semantic_head(pyramid[0])
        return outputs


def build_model(config: ModelConfig) -> Yolact:
    """Build the network a config describes (the one place a ModelConfig becomes modules).

    Convolutions outside the backbone get upstream's initialisation: xavier-uniform, zero bias;
    deformable convs' offset/modulation convs start at zero (see ``DeformableConv2d``).
    """
    backbone = build_backbone(config.backbone, config.attention,
                              deformable_layers=config.deformable_layers)
    fpn = FPN(backbone.out_channels[-3:], config.fpn_channels)
    protonet = build_protonet(config.fpn_channels, config.num_prototypes)
    head = PredictionHead(config.fpn_channels, num_anchors=config.num_anchors,
                          num_classes=config.num_classes + 1,
                          num_prototypes=config.num_prototypes)
    semantic_head = nn.Conv2d(config.fpn_channels, config.num_classes, kernel_size=1)
    maskiou_net = MaskIoUNet(config.num_classes) if config.mask_rescoring else None
    for module in filter(None, (fpn, protonet, head, semantic_head, maskiou_net)):
        for layer in module.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)
    return Yolact(backbone=backbone, fpn=fpn, protonet=protonet, prediction_head=head,
                  semantic_head=semantic_head, anchor_scales=config.anchor_scales,
                  aspect_ratios=config.aspect_ratios, square_anchors=config.square_anchors,
                  input_size=config.input_size, anchor_scale_factors=config.anchor_scale_factors,
                  maskiou_net=maskiou_net)
