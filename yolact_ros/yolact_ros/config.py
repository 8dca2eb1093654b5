"""Model and postprocessing configurations: a config name fully defines the network.

Configs are frozen dataclasses. ``build_model`` (in ``yolact_ros.modeling``) is the one place a
config becomes objects; constructors elsewhere take plain values.
"""

from dataclasses import dataclass, field, replace
from typing import Dict, Tuple

COCO_CLASS_NAMES = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
    'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog',
    'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella',
    'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle',
    'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange',
    'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant',
    'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone',
    'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors',
    'teddy bear', 'hair drier', 'toothbrush')

# COCO's 80 category ids are not contiguous (1..90 with gaps).
COCO_CATEGORY_IDS = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28,
    31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55,
    56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84,
    85, 86, 87, 88, 89, 90)

# Upstream's normalisation, in BGR order (the network sees RGB after the swap).
IMAGENET_MEAN_BGR = (103.94, 116.78, 123.68)
IMAGENET_STD_BGR = (57.38, 57.12, 58.40)


@dataclass(frozen=True)
class AttentionConfig:
    """Channel attention after each ResNet stage (the seed's modification).

    ``shared_mlp=False`` gives the seed's described design (separate MLPs for the average- and
    max-pooled branches); ``True`` gives CBAM's single shared MLP, which the seed's code used.
    """

    enabled: bool = False
    reduction: int = 16
    shared_mlp: bool = False


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a YOLACT network's structure and its input transform."""

    name: str
    backbone: str
    input_size: int
    class_names: Tuple[str, ...] = COCO_CLASS_NAMES
    # Dataset category id of each contiguous class (what predictions report as category_id).
    category_ids: Tuple[int, ...] = COCO_CATEGORY_IDS
    num_prototypes: int = 32
    fpn_channels: int = 256
    # Anchor side in pixels at ``input_size`` for each of P3..P7.
    anchor_scales: Tuple[int, ...] = (24, 48, 96, 192, 384)
    aspect_ratios: Tuple[float, ...] = (1.0, 0.5, 2.0)
    # Upstream v1.x computes rectangles but then forces h = w (the "square anchor" quirk).
    square_anchors: bool = True
    pixel_mean_bgr: Tuple[float, float, float] = IMAGENET_MEAN_BGR
    pixel_std_bgr: Tuple[float, float, float] = IMAGENET_STD_BGR
    attention: AttentionConfig = field(default_factory=AttentionConfig)

    @property
    def num_classes(self) -> int:
        """Foreground classes K (the classifier has K + 1 outputs, 0 = background)."""
        return len(self.class_names)

    @property
    def num_anchors(self) -> int:
        """Anchors A per feature-map location."""
        return len(self.aspect_ratios)

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f'unknown backbone {self.backbone!r}; expected one of {BACKBONES}')
        if len(self.category_ids) != len(self.class_names):
            raise ValueError(
                f'{self.name}: {len(self.class_names)} class names but '
                f'{len(self.category_ids)} category ids')
        if self.input_size < 32 or self.input_size % 2:
            raise ValueError(f'{self.name}: input_size must be even and >= 32, got '
                             f'{self.input_size}')
        if self.attention.reduction < 1:
            raise ValueError(f'attention reduction must be >= 1, got {self.attention.reduction}')

    def with_classes(self, class_names: Tuple[str, ...],
                     category_ids: Tuple[int, ...]) -> 'ModelConfig':
        """Return this config for another label set (e.g. a custom dataset)."""
        return replace(self, class_names=tuple(class_names),
                       category_ids=tuple(int(c) for c in category_ids))

    def with_attention(self, enabled: bool = True, **kwargs) -> 'ModelConfig':
        """Return this config with channel attention switched on or off."""
        return replace(self, attention=replace(self.attention, enabled=enabled, **kwargs))

    def to_dict(self) -> dict:
        """Serialise to plain JSON-compatible values (stored inside checkpoints)."""
        return {
            'name': self.name, 'backbone': self.backbone, 'input_size': self.input_size,
            'class_names': list(self.class_names), 'category_ids': list(self.category_ids),
            'num_prototypes': self.num_prototypes, 'fpn_channels': self.fpn_channels,
            'anchor_scales': list(self.anchor_scales),
            'aspect_ratios': list(self.aspect_ratios), 'square_anchors': self.square_anchors,
            'pixel_mean_bgr': list(self.pixel_mean_bgr),
            'pixel_std_bgr': list(self.pixel_std_bgr),
            'attention': {'enabled': self.attention.enabled,
                          'reduction': self.attention.reduction,
                          'shared_mlp': self.attention.shared_mlp},
        }

    @classmethod
    def from_dict(cls, values: dict) -> 'ModelConfig':
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        known = set(cls.__dataclass_fields__)
        unknown = set(values) - known
        if unknown:
            raise ValueError(f'unknown model config fields: {sorted(unknown)}')
        kwargs = dict(values)
        kwargs['attention'] = AttentionConfig(**values.get('attention', {}))
        for key in ('class_names', 'category_ids', 'anchor_scales', 'aspect_ratios',
                    'pixel_mean_bgr', 'pixel_std_bgr'):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)


@dataclass(frozen=True)
class PostprocessConfig:
    """Detection thresholds; defaults are upstream's evaluation settings."""

    score_threshold: float = 0.05
    nms_iou: float = 0.5
    top_k: int = 200
    max_detections: int = 100
    mask_threshold: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.score_threshold <= 1.0:
            raise ValueError(f'score_threshold must be in [0, 1], got {self.score_threshold}')
        if not 0.0 < self.nms_iou <= 1.0:
            raise ValueError(f'nms_iou must be in (0, 1], got {self.nms_iou}')
        if self.top_k < 1:
            raise ValueError(f'top_k must be >= 1, got {self.top_k}')
        if self.max_detections < 1:
            raise ValueError(f'max_detections must be >= 1, got {self.max_detections}')
        if not 0.0 < self.mask_threshold < 1.0:
            raise ValueError(f'mask_threshold must be in (0, 1), got {self.mask_threshold}')


BACKBONES = ('resnet18', 'resnet34', 'resnet50', 'resnet101')

CONFIGS: Dict[str, ModelConfig] = {
    'yolact_base': ModelConfig(name='yolact_base', backbone='resnet101', input_size=550),
    'yolact_resnet50': ModelConfig(name='yolact_resnet50', backbone='resnet50', input_size=550),
    'yolact_im700': ModelConfig(
        name='yolact_im700', backbone='resnet101', input_size=700,
        # Upstream scales anchor sides with the input: int(s * 700 / 550).
        anchor_scales=tuple(int(s * 700 / 550) for s in (24, 48, 96, 192, 384))),
    # Small network for CPU work, tests and the bundled demo model.
    'yolact_resnet18': ModelConfig(
        name='yolact_resnet18', backbone='resnet18', input_size=384, fpn_channels=128,
        num_prototypes=16,
        anchor_scales=tuple(int(s * 384 / 550) for s in (24, 48, 96, 192, 384))),
}


def get_config(name: str) -> ModelConfig:
    """Return the named config, or raise ``ValueError`` listing the known names."""
    try:
        return CONFIGS[name]
    except KeyError:
        raise ValueError(
            f'unknown config {name!r}; known configs: {", ".join(sorted(CONFIGS))}') from None
