"""Parameters of ``segment_node``: specs (types, ranges, descriptions), validation, frozen values.

rclpy-free: the node turns :data:`PARAM_SPECS` into parameter descriptors, reads the values once
into a :class:`NodeParams` and validates every runtime change with :func:`validate_param`.
"""

from dataclasses import dataclass, replace
import math
import re
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from yolact_ros.config import PostprocessConfig
from yolact_ros.ros.cameras import check_cameras
from yolact_ros.ros.mask_encoding import ENCODINGS
from yolact_ros.tracking import TrackerConfig


@dataclass(frozen=True)
class ParamSpec:
    """One node parameter.

    Attributes:
        name: parameter name.
        default: default value; its Python type is the parameter type (``tuple`` = string array).
        description: one line shown by ``ros2 param describe``.
        runtime: ``True`` if a change applies at once, else it applies when ``applies`` says
            (model, device and input at the next configure, ``autostart`` at start).
        min_value, max_value: inclusive range of a number; the parameter descriptor carries
            exactly this range and :func:`validate_param` accepts exactly it (an open end such
            as ``nms_iou > 0`` is written as the smallest useful value, 0.01).
        choices: allowed values of a string.
    """

    name: str
    default: Any
    description: str
    runtime: bool = True
    min_value: Optional[float] = None
    max_value: Optional[float] = None
    choices: Tuple[str, ...] = ()
    applies: str = 'at the next configure'

    @property
    def constraints(self) -> str:
        """The allowed values in words (for the descriptor's ``additional_constraints``)."""
        if self.choices:
            return 'one of: ' + ', '.join(self.choices)
        if self.min_value is not None:
            return f'{self.min_value} to {self.max_value}'
        return ''


PARAM_SPECS: Tuple[ParamSpec, ...] = (
    ParamSpec('weights', '', 'Model weights: a .safetensors or official .pth checkpoint, or an '
              '.onnx / .engine export; empty: the bundled synthetic-shapes demo model.',
              runtime=False),
    ParamSpec('backend', 'torch', 'Inference backend: torch (eager), onnxruntime, tensorrt or '
              'openvino.', runtime=False,
              choices=('torch', 'onnxruntime', 'tensorrt', 'openvino')),
    ParamSpec('config', '', 'Model config name; empty: the config stored in the weights.',
              runtime=False),
    ParamSpec('device', 'auto', 'Torch device: auto (CUDA if available), cpu, cuda, cuda:N.',
              runtime=False),
    ParamSpec('half', False, 'Run the network in float16 (CUDA only).', runtime=False),
    ParamSpec('image_transport', 'raw', "Input: 'raw' subscribes to image (sensor_msgs/Image), "
              "'compressed' to image/compressed (sensor_msgs/CompressedImage).", runtime=False,
              choices=('raw', 'compressed')),
    ParamSpec('qos_reliability', 'best_effort', 'Input QoS reliability: best_effort (sensor '
              'data, matches any publisher) or reliable.', runtime=False,
              choices=('best_effort', 'reliable')),
    ParamSpec('qos_depth', 5, 'Input QoS history depth.', runtime=False, min_value=1,
              max_value=100),
    ParamSpec('cameras', (), 'Cameras served by one model in batches: camera NAME subscribes '
              'NAME/image and publishes NAME/instances, NAME/detections, ...; empty: one '
              'camera on image.', runtime=False),
    ParamSpec('score_threshold', 0.3, 'Publish detections scoring above this (NMS candidates '
              'need a score above 0.05, as upstream).', min_value=0.0, max_value=1.0),
    ParamSpec('nms_iou', 0.5, 'IoU above which Fast NMS suppresses a box.', min_value=0.01,
              max_value=1.0),
    ParamSpec('top_k', 200, 'Candidates per class kept before NMS.', min_value=1,
              max_value=1000),
    ParamSpec('max_detections', 100, 'Most instances published per image.', min_value=1,
              max_value=1000),
    ParamSpec('mask_threshold', 0.5, 'Mask probability above which a pixel belongs to the '
              'instance.', min_value=0.01, max_value=0.99),
    ParamSpec('classes', (), 'Class names to publish (allow-list, applied before NMS and '
              'max_detections); empty: all classes.'),
    ParamSpec('mask_encoding', 'bitmap_roi', 'InstanceMask encoding of the instances topic.',
              choices=tuple(ENCODINGS)),
    ParamSpec('detection_class_id', 'name', 'Hypothesis class_id in detections: the class '
              'name, or its numeric id as in label_info.', choices=('name', 'id')),
    ParamSpec('publish_instances', True, 'Publish instances (yolact_ros_msgs/InstanceArray).'),
    ParamSpec('publish_detections', True, 'Publish detections (vision_msgs/Detection2DArray).'),
    ParamSpec('publish_instance_mask', True, 'Publish instance_mask (mono16 label image) while '
              'it has subscribers.'),
    ParamSpec('publish_overlay', True, 'Publish overlay (bgr8 drawing) while it has '
              'subscribers.'),
    ParamSpec('overlay_max_rate', 10.0, 'Most overlay images per second.', min_value=0.01,
              max_value=120.0),
    ParamSpec('no_image_timeout', 5.0, 'Seconds after activation without an image before '
              'warning (once) about the input topic.', runtime=False, applies='at the next '
              'activate', min_value=0.1, max_value=3600.0),
    ParamSpec('threads', 0, 'CPU threads of torch and ONNX Runtime; 0: half the cores, at '
              'most 4.', runtime=False, min_value=0, max_value=64),
    ParamSpec('autostart', True, 'Configure and activate at start, without a lifecycle '
              'manager.', runtime=False, applies='at start'),
    ParamSpec('tracking.enabled', True, 'Track instances across frames (ByteTrack on boxes '
              'and masks): Instance.track_id and Detection2D.id carry the track id.',
              runtime=False, applies='at the next activate'),
    # The tracking defaults are the tracker's own (yolact predict --track uses them too).
    ParamSpec('tracking.high_threshold', TrackerConfig.high_threshold, 'Detections scoring at '
              'least this are matched first, to all tracks; those between score_threshold and '
              'this only continue tracks seen in the previous frame.', min_value=0.0,
              max_value=1.0),
    ParamSpec('tracking.new_track_threshold', TrackerConfig.new_track_threshold, 'An unmatched '
              'detection scoring at least this (and tracking.high_threshold) starts a track.',
              min_value=0.0, max_value=1.0),
    ParamSpec('tracking.mask_weight', TrackerConfig.mask_weight, 'Weight of the mask IoU in the '
              'matching cost, the box IoU getting the rest; 0: box IoU only.', min_value=0.0,
              max_value=1.0),
    ParamSpec('tracking.track_buffer', TrackerConfig.track_buffer_s, 'Seconds a track is kept '
              'unseen before its id is dropped.', min_value=0.0, max_value=60.0),
    ParamSpec('tracking.duplicate_iou', TrackerConfig.duplicate_iou, 'A detection overlapping a '
              'higher-scoring one of any class by more than this IoU (masks) is not tracked '
              '(track id 0): the same object found twice (under two classes, or a part of it); '
              '1: off.', min_value=0.0, max_value=1.0),
    ParamSpec('depth.enabled', False, 'Subscribe to depth/image and depth/camera_info (aligned '
              'to image) and publish detections_3d, markers, points and the 3D fields of '
              'instances.', runtime=False),
    ParamSpec('depth.max_skew', 0.05, 'Seconds between the stamps of an image and the depth '
              'frame paired with it, at most.', min_value=0.0, max_value=1.0),
    ParamSpec('depth.erode_px', 2, 'Pixels removed at each mask border before reading depth '
              '(edge pixels mix object and background).', min_value=0, max_value=20),
    ParamSpec('depth.min_depth', 0.1, 'Nearest depth used, metres (below depth.max_depth).',
              min_value=0.0, max_value=50.0),
    ParamSpec('depth.max_depth', 10.0, 'Farthest depth used, metres.', min_value=0.01,
              max_value=100.0),
    ParamSpec('depth.mad_k', 3.0, 'Depths farther than this many robust sigmas (1.4826 MAD) '
              'from the median along the ray are outliers.', min_value=0.5, max_value=20.0),
    ParamSpec('depth.min_points', 20, 'Fewer depth points make an instance invalid in 3D '
              '(Instance.valid_3d false; left out of detections_3d, markers and points).',
              min_value=1, max_value=100000),
    ParamSpec('target_frame', '', 'Frame of detections_3d, markers and points, through tf2 '
              '(where installed); empty: the camera frame of the image header.'),
)

SPECS: Dict[str, ParamSpec] = {spec.name: spec for spec in PARAM_SPECS}


def field_name(name: str) -> str:
    """Return the :class:`NodeParams` field of parameter ``name``: dots become underscores."""
    return name.replace('.', '_')


_DEVICE = re.compile(r'^(auto|cpu|cuda(:\d+)?)$')


@dataclass(frozen=True)
class NodeParams:
    """Values of all parameters (see :data:`PARAM_SPECS` for their meaning)."""

    weights: str = ''
    backend: str = 'torch'
    config: str = ''
    device: str = 'auto'
    half: bool = False
    image_transport: str = 'raw'
    qos_reliability: str = 'best_effort'
    qos_depth: int = 5
    cameras: Tuple[str, ...] = ()
    score_threshold: float = 0.3
    nms_iou: float = 0.5
    top_k: int = 200
    max_detections: int = 100
    mask_threshold: float = 0.5
    classes: Tuple[str, ...] = ()
    mask_encoding: str = 'bitmap_roi'
    detection_class_id: str = 'name'
    publish_instances: bool = True
    publish_detections: bool = True
    publish_instance_mask: bool = True
    publish_overlay: bool = True
    overlay_max_rate: float = 10.0
    no_image_timeout: float = 5.0
    threads: int = 0
    autostart: bool = True
    tracking_enabled: bool = True
    tracking_high_threshold: float = TrackerConfig.high_threshold
    tracking_new_track_threshold: float = TrackerConfig.new_track_threshold
    tracking_mask_weight: float = TrackerConfig.mask_weight
    tracking_track_buffer: float = TrackerConfig.track_buffer_s
    tracking_duplicate_iou: float = TrackerConfig.duplicate_iou
    depth_enabled: bool = False
    depth_max_skew: float = 0.05
    depth_erode_px: int = 2
    depth_min_depth: float = 0.1
    depth_max_depth: float = 10.0
    depth_mad_k: float = 3.0
    depth_min_points: int = 20
    target_frame: str = ''

    @classmethod
    def from_values(cls, values: Mapping[str, Any],
                    class_names: Optional[Sequence[str]] = None) -> 'NodeParams':
        """Build from ``{name: value}`` (missing names keep defaults), validating every value.

        Raises:
            ValueError: listing every invalid value with its reason.
        """
        unknown = sorted(set(values) - set(SPECS))
        if unknown:
            raise ValueError(f'unknown parameters: {unknown}')
        errors = [f'{name}: {reason}' for name, value in values.items()
                  if (reason := validate_param(name, value, class_names)) is not None]
        if errors:
            raise ValueError('invalid parameters: ' + '; '.join(errors))
        params = cls(**{field_name(name): normalize(name, value)
                        for name, value in values.items()})
        if 'depth.min_depth' in values and 'depth.max_depth' in values:
            params.check_depth_range()
        return params

    def with_values(self, values: Mapping[str, Any],
                    class_names: Optional[Sequence[str]] = None) -> 'NodeParams':
        """Return a copy with ``values`` changed, validated as in :meth:`from_values`."""
        changed = NodeParams.from_values(values, class_names)
        updated = replace(self, **{field_name(name): getattr(changed, field_name(name))
                                   for name in values})
        updated.check_depth_range()
        return updated

    def check_depth_range(self) -> None:
        """Raise ``ValueError`` unless ``depth.min_depth < depth.max_depth``."""
        if not self.depth_min_depth < self.depth_max_depth:
            raise ValueError(f'invalid parameters: depth.min_depth ({self.depth_min_depth}) must '
                             f'be below depth.max_depth ({self.depth_max_depth})')

    def postprocess(self, class_names: Sequence[str] = ()) -> PostprocessConfig:
        """Return the Segmenter thresholds these parameters select.

        ``class_names`` (the loaded model's) turns the ``classes`` allow-list into class
        indices; without them the allow-list is left out (set it once the model is loaded).
        """
        allowed = tuple(sorted(list(class_names).index(name) for name in self.classes
                               if name in class_names))
        return PostprocessConfig(
            score_threshold=self.score_threshold, nms_iou=self.nms_iou, top_k=self.top_k,
            max_detections=self.max_detections, mask_threshold=self.mask_threshold,
            classes=allowed)

    def tracker_config(self) -> TrackerConfig:
        """Return the tracker thresholds these parameters select.

        The tracker sees the published detections (all above ``score_threshold``), so
        ByteTrack's second stage works on those between ``score_threshold`` and
        ``tracking.high_threshold`` (``low_threshold`` 0); a ``tracking.new_track_threshold``
        below ``tracking.high_threshold`` counts as that.
        """
        return TrackerConfig(
            high_threshold=self.tracking_high_threshold, low_threshold=0.0,
            new_track_threshold=max(self.tracking_new_track_threshold,
                                    self.tracking_high_threshold),
            mask_weight=self.tracking_mask_weight, track_buffer_s=self.tracking_track_buffer,
            duplicate_iou=self.tracking_duplicate_iou)

    def depth_options(self) -> Dict[str, Any]:
        """Return the keyword arguments of :func:`yolact_ros.geometry.instances_3d`."""
        return {'erode_px': self.depth_erode_px, 'min_depth': self.depth_min_depth,
                'max_depth': self.depth_max_depth, 'mad_k': self.depth_mad_k,
                'min_points': self.depth_min_points}

    def as_dict(self) -> Dict[str, Any]:
        """Return ``{name: value}`` (string arrays as lists, as ROS parameter values)."""
        return {spec.name: (list(v) if isinstance(v := getattr(self, field_name(spec.name)),
                                                  tuple) else v)
                for spec in PARAM_SPECS}


def normalize(name: str, value: Any) -> Any:
    """Convert a valid ROS parameter value to the :class:`NodeParams` field type."""
    spec = SPECS[name]
    if isinstance(spec.default, tuple):
        return tuple(value or ())
    if isinstance(spec.default, float):
        return float(value)
    return value


def validate_param(name: str, value: Any,
                   class_names: Optional[Sequence[str]] = None) -> Optional[str]:
    """Return why ``value`` is not valid for parameter ``name``, or ``None`` if it is.

    ``class_names`` (the loaded model's) checks the ``classes`` allow-list; without a model any
    non-empty names are accepted and checked at configure.
    """
    spec = SPECS.get(name)
    if spec is None:
        return f'unknown parameter {name!r}'
    default = spec.default
    if isinstance(default, bool):
        if not isinstance(value, bool):
            return f'expected a bool, got {value!r}'
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            return f'expected an integer, got {value!r}'
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f'expected a number, got {value!r}'
        if not math.isfinite(value):
            return f'expected a finite number, got {value!r}'
    elif isinstance(default, str):
        if not isinstance(value, str):
            return f'expected a string, got {value!r}'
    elif isinstance(default, tuple):
        if value is None:
            value = ()
        if isinstance(value, str) or not all(isinstance(v, str) for v in value):
            return f'expected a list of strings, got {value!r}'
    if spec.min_value is not None and not spec.min_value <= value <= spec.max_value:
        return f'{value} is outside [{spec.min_value}, {spec.max_value}]'
    if spec.choices and value not in spec.choices:
        return f'{value!r} is not one of {", ".join(spec.choices)}'
    return _check_specific(name, value, class_names)


def _check_specific(name: str, value: Any,
                    class_names: Optional[Sequence[str]]) -> Optional[str]:
    if name == 'device' and not _DEVICE.match(value):
        return f"{value!r} is not 'auto', 'cpu', 'cuda' or 'cuda:N'"
    if name == 'classes':
        return check_classes(value or (), class_names)
    if name == 'cameras':
        return check_cameras(value or ())
    return None


def check_classes(classes: Sequence[str],
                  class_names: Optional[Sequence[str]]) -> Optional[str]:
    """Return why the allow-list ``classes`` is invalid for a model's ``class_names``, or None."""
    if any(not c.strip() for c in classes):
        return 'class names must not be empty'
    if class_names is None:
        return None
    unknown = [c for c in classes if c not in set(class_names)]
    if unknown:
        shown = ', '.join(class_names[:20]) + (', ...' if len(class_names) > 20 else '')
        return f'unknown class {", ".join(map(repr, unknown))}; the model has: {shown}'
    return None


def load_segmenter(params: NodeParams) -> Any:
    """Load the :class:`~yolact_ros.inference.Segmenter` that ``params`` select.

    Empty ``weights`` selects the bundled demo model, so the node runs out of the box.
    """
    from yolact_ros.export.backends import load_segmenter as load_backend
    from yolact_ros.weights import demo_weights

    return load_backend(
        params.weights or demo_weights(), backend=params.backend,
        config=params.config or None, device=params.device, half=params.half,
        postprocess=params.postprocess())
