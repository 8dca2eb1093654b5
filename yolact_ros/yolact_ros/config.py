"""Model and postprocessing configurations: a config name fully defines the network.

Configs are frozen dataclasses. ``build_model`` (in ``yolact_ros.modeling``) is the one place a
config becomes objects; constructors elsewhere take plain values.
"""

from dataclasses import asdict, dataclass, field, replace
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
    anchor_scales: Tuple[float, ...] = (24, 48, 96, 192, 384)
    # Each level's anchor side is multiplied by each factor (YOLACT++: 2 ** (j / 3), j = 0..2);
    # anchors are emitted factor-major: ``for factor: for aspect_ratio``.
    anchor_scale_factors: Tuple[float, ...] = (1.0,)
    aspect_ratios: Tuple[float, ...] = (1.0, 0.5, 2.0)
    # Upstream v1.x computes rectangles but then forces h = w (the "square anchor" quirk);
    # YOLACT++ uses real rectangles.
    square_anchors: bool = True
    # For each of the four ResNet stages, the indices of the blocks whose 3x3 ``conv2`` is a
    # modulated deformable convolution (YOLACT++); ``()`` for none.
    deformable_layers: Tuple[Tuple[int, ...], ...] = ()
    # YOLACT++ mask re-scoring head (``maskiou_net``): predicts each mask's IoU per class.
    mask_rescoring: bool = False
    # Input transform, applied in BGR before the swap to RGB: (x - mean) / std. DarkNet's
    # "x / 255, no mean/std" is mean 0, std 255.
    pixel_mean_bgr: Tuple[float, float, float] = IMAGENET_MEAN_BGR
    pixel_std_bgr: Tuple[float, float, float] = IMAGENET_STD_BGR
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    # Input geometry: False squashes every image to ``input_size x input_size`` (upstream's
    # transform; official weights need it), True scales it to fit keeping its aspect and pads
    # the bottom/right with the mean colour (models trained so by this project).
    letterbox: bool = False

    @property
    def num_classes(self) -> int:
        """Foreground classes K (the classifier has K + 1 outputs, 0 = background)."""
        return len(self.class_names)

    @property
    def num_anchors(self) -> int:
        """Anchors A per feature-map location (scale factors x aspect ratios)."""
        return len(self.anchor_scale_factors) * len(self.aspect_ratios)

    @property
    def proto_size(self) -> int:
        """Side of the prototype masks: twice P3's side (stride 4 of ``input_size``)."""
        side = self.input_size
        for _ in range(3):  # stride-2 stem conv, max pool, first strided stage -> P3 (stride 8)
            side = (side + 1) // 2
        return 2 * side

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
        if not self.anchor_scale_factors or min(self.anchor_scale_factors) <= 0:
            raise ValueError(f'{self.name}: anchor_scale_factors must be positive, got '
                             f'{self.anchor_scale_factors}')
        if self.deformable_layers:
            if not self.backbone.startswith('resnet') or len(self.deformable_layers) != 4:
                raise ValueError(
                    f'{self.name}: deformable_layers needs a ResNet backbone and one tuple per '
                    f'stage (4), got backbone {self.backbone!r} and {self.deformable_layers}')
        if self.mask_rescoring:
            side = self.proto_size
            for _ in range(MASKIOU_STRIDED_CONVS):  # 3x3, stride 2, no padding
                side = (side - 3) // 2 + 1
            if side < 1:
                raise ValueError(
                    f'{self.name}: mask re-scoring needs prototypes of at least 63 px (input_size '
                    f'>= 252), got input_size {self.input_size} (prototypes {self.proto_size} px)')

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
        return _to_lists(asdict(self))

    @classmethod
    def from_dict(cls, values: dict) -> 'ModelConfig':
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them.

        Fields missing from ``values`` (e.g. a checkpoint written before they existed) take
        their defaults.
        """
        known = set(cls.__dataclass_fields__)
        unknown = set(values) - known
        if unknown:
            raise ValueError(f'unknown model config fields: {sorted(unknown)}')
        kwargs = {key: _to_tuples(value) for key, value in values.items() if key != 'attention'}
        kwargs['attention'] = AttentionConfig(**values.get('attention', {}))
        return cls(**kwargs)


def _to_lists(value):
    """Turn tuples (nested too) into lists, leaving other values as they are."""
    if isinstance(value, (list, tuple)):
        return [_to_lists(item) for item in value]
    if isinstance(value, dict):
        return {key: _to_lists(item) for key, item in value.items()}
    return value


def _to_tuples(value):
    """Turn lists (nested too) into tuples: the inverse of :func:`_to_lists`."""
    if isinstance(value, (list, tuple)):
        return tuple(_to_tuples(item) for item in value)
    return value


@dataclass(frozen=True)
class PostprocessConfig:
    """Detection thresholds; defaults are upstream's evaluation settings (eval.py).

    Two score thresholds, as upstream: ``candidate_threshold`` picks the priors that enter Fast
    NMS (upstream ``Detect``'s ``conf_thresh``, 0.05), ``score_threshold`` filters the final
    detections (upstream ``postprocess``'s ``score_threshold``). Both keep a score strictly
    above them (``>``, as upstream). ``score_threshold`` applies to the box (class) score after
    NMS and ``max_detections``, before YOLACT++'s mask re-scoring, so raising it only removes
    detections: the result at T is the result at 0 without the scores ``<= T``.

    Attributes:
        candidate_threshold: a prior is an NMS candidate if its best allowed foreground class
            scores above this.
        score_threshold: a final detection is kept if its score is above this.
        nms_iou: Fast NMS suppresses a box whose IoU with a higher-scored box of its class is
            above this.
        top_k: candidates per class entering Fast NMS.
        max_detections: detections per image after NMS (before ``score_threshold``).
        mask_threshold: a mask pixel is set where the upsampled mask probability is above this.
        classes: allow-list of 0-based foreground class indices, applied before NMS and
            ``max_detections`` so other classes cannot crowd them out; empty: all classes.
    """

    candidate_threshold: float = 0.05
    score_threshold: float = 0.0
    nms_iou: float = 0.5
    top_k: int = 200
    max_detections: int = 100
    mask_threshold: float = 0.5
    classes: Tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.candidate_threshold < 1.0:
            raise ValueError('candidate_threshold must be in [0, 1), got '
                             f'{self.candidate_threshold}')
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
        if any(not isinstance(c, int) or c < 0 for c in self.classes):
            raise ValueError(f'classes must be 0-based class indices, got {self.classes}')


BACKBONES = ('resnet18', 'resnet34', 'resnet50', 'resnet101', 'darknet53')

# The mask re-scoring head's strided 3x3 convs (1 -> 8 -> 16 -> 32 -> 64 -> 128 channels).
MASKIOU_STRIDED_CONVS = 5

# YOLACT++ (upstream ``yolact_plus_*``): three scales per level, rectangular anchors, re-scoring.
_PLUS = {'anchor_scale_factors': tuple(2 ** (j / 3.0) for j in range(3)),
         'square_anchors': False, 'mask_rescoring': True}

CONFIGS: Dict[str, ModelConfig] = {
    'yolact_base': ModelConfig(name='yolact_base', backbone='resnet101', input_size=550),
    'yolact_resnet50': ModelConfig(name='yolact_resnet50', backbone='resnet50', input_size=550),
    'yolact_im700': ModelConfig(
        name='yolact_im700', backbone='resnet101', input_size=700,
        # Upstream scales anchor sides with the input: int(s * 700 / 550).
        anchor_scales=tuple(int(s * 700 / 550) for s in (24, 48, 96, 192, 384))),
    'yolact_darknet53': ModelConfig(
        name='yolact_darknet53', backbone='darknet53', input_size=550,
        # Upstream's darknet transform: x / 255 in RGB, no mean or std.
        pixel_mean_bgr=(0.0, 0.0, 0.0), pixel_std_bgr=(255.0, 255.0, 255.0)),
    'yolact_plus_resnet50': ModelConfig(
        name='yolact_plus_resnet50', backbone='resnet50', input_size=550,
        # Every block of stages 2, 3 and 4 (13 blocks).
        deformable_layers=((), (0, 1, 2, 3), tuple(range(6)), (0, 1, 2)), **_PLUS),
    'yolact_plus_base': ModelConfig(
        name='yolact_plus_base', backbone='resnet101', input_size=550,
        # Every third block of stages 2, 3 and 4, starting with the first (11 blocks).
        deformable_layers=((), (0, 3), tuple(range(0, 23, 3)), (0,)), **_PLUS),
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
