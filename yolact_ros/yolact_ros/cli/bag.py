"""``yolact bag``: segment the images of a recorded rosbag2 into a new bag, without ROS.

Frames go through the node's own per-frame code, so the output bag holds what ``segment_node``
would have published (same topics, types, encodings and thresholds), stamped like the input.
"""

import argparse
from pathlib import Path
import sys

from yolact_ros.cli import CommandError
from yolact_ros.cli.common import (
    add_threads_argument, announce_bundled, apply_threads, check_config, resolve_weights)
from yolact_ros.ros.params import NodeParams, SPECS

# CLI option -> node parameter (the node's defaults, ranges and validation apply).
_NODE_OPTIONS = {
    'score_threshold': 'score_threshold', 'nms_iou': 'nms_iou', 'top_k': 'top_k',
    'max_detections': 'max_detections', 'mask_threshold': 'mask_threshold',
    'classes': 'classes', 'encoding': 'mask_encoding',
    'detection_class_id': 'detection_class_id', 'config': 'config', 'device': 'device',
    'half': 'half',
}


def _help(name: str) -> str:
    spec = SPECS[name]
    default = '' if spec.default in ('', False, ()) else f'; default {spec.default}'
    return f'{spec.description} (Node parameter {name}{default}.)'


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bag`` subcommand."""
    from yolact_ros.weights import DEMO_WEIGHTS

    parser = subparsers.add_parser(
        'bag', help='segment the images of a rosbag2 (MCAP or sqlite3) into a new bag',
        description='Read IN (a rosbag2 folder, MCAP or sqlite3), run every message of the '
                    'image topic through the same code as segment_node and write OUT with the '
                    "node's topics: instances (yolact_ros_msgs/InstanceArray), detections "
                    '(vision_msgs/Detection2DArray), label_info (once) and, if asked, '
                    'instance_mask (mono16) and overlay (bgr8). Each message keeps the input '
                    'header and log time; the bag embeds every message definition. Frames that '
                    'cannot be decoded are skipped and counted. No ROS install needed.')
    parser.add_argument('input', type=Path, metavar='IN', help='input rosbag2 folder')
    parser.add_argument('output', type=Path, metavar='OUT', help='output rosbag2 folder')
    parser.add_argument('--image-topic', required=True, metavar='TOPIC',
                        help='input image topic, e.g. /camera/color/image_raw')
    parser.add_argument('--compressed', action='store_true',
                        help='read TOPIC/compressed (sensor_msgs/CompressedImage), as the '
                        'node with image_transport: compressed')
    parser.add_argument('--weights', default=None, metavar='FILE',
                        help=f'checkpoint (default: the bundled {DEMO_WEIGHTS})')
    parser.add_argument('--config', default='', metavar='NAME', help=_help('config'))
    parser.add_argument('--device', default=SPECS['device'].default, help=_help('device'))
    parser.add_argument('--half', action='store_true', help=_help('half'))
    add_threads_argument(parser)
    for option, kind in (('score_threshold', float), ('nms_iou', float), ('top_k', int),
                         ('max_detections', int), ('mask_threshold', float)):
        parser.add_argument('--' + option.replace('_', '-'), type=kind,
                            default=SPECS[option].default, metavar='N' if kind is int else 'F',
                            help=_help(option))
    parser.add_argument('--classes', nargs='+', default=[], metavar='NAME',
                        help=_help('classes'))
    parser.add_argument('--encoding', default=SPECS['mask_encoding'].default,
                        choices=SPECS['mask_encoding'].choices, help=_help('mask_encoding'))
    parser.add_argument('--detection-class-id', default=SPECS['detection_class_id'].default,
                        choices=SPECS['detection_class_id'].choices,
                        help=_help('detection_class_id'))
    parser.add_argument('--instance-mask', action='store_true',
                        help='also write instance_mask (mono16 label image, 0 = background)')
    parser.add_argument('--overlay', action='store_true',
                        help='also write overlay (bgr8 drawing of masks, boxes and labels)')
    parser.add_argument('--namespace', default='/', metavar='NS',
                        help='namespace of the output topics (default /: /instances, ...)')
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap',
                        help='output storage (default mcap)')
    parser.add_argument('--distro', choices=('jazzy', 'humble'), default='jazzy',
                        help='ROS 2 distro that will read OUT: humble writes rosbag2 version 8 '
                        '(default jazzy: version 9)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing OUT bag')
    parser.add_argument('--track', action='store_true',
                        help="track instances across frames with the node's tracker and its "
                        'tracking.* defaults: Instance.track_id and Detection2D.id carry the '
                        'track ids (frames stamped by their headers)')
    parser.add_argument('--depth-topic', default='', metavar='TOPIC',
                        help='aligned depth image topic (16UC1 mm or 32FC1 m), e.g. '
                        '/camera/aligned_depth_to_color/image_raw: also write detections_3d, '
                        'markers and points and the 3D fields of instances, as the node with '
                        'depth.enabled (needs --camera-info-topic)')
    parser.add_argument('--camera-info-topic', default='', metavar='TOPIC',
                        help='camera_info of the depth images, e.g. '
                        '/camera/aligned_depth_to_color/camera_info')
    parser.set_defaults(func=run)


def node_params(args: argparse.Namespace, weights: Path) -> NodeParams:
    """Return the node parameters the options select, validated as the node validates them."""
    values = {param: getattr(args, option) for option, param in _NODE_OPTIONS.items()}
    values['weights'] = str(weights)
    values['depth.enabled'] = bool(getattr(args, 'depth_topic', ''))
    try:
        return NodeParams.from_values(values)
    except ValueError as error:
        raise CommandError(str(error)) from None


def bag_depth(args: argparse.Namespace, params: NodeParams):
    """Return the :class:`~yolact_ros.ros.bag_depth.BagDepth` the options ask for, or None."""
    if not args.depth_topic and not args.camera_info_topic:
        return None
    if not args.depth_topic or not args.camera_info_topic:
        raise CommandError('--depth-topic and --camera-info-topic go together')
    from yolact_ros.ros.bag_depth import BagDepth

    return BagDepth(args.depth_topic, args.camera_info_topic, params.depth_options(),
                    params.depth_max_skew)


def run(args: argparse.Namespace) -> int:
    """Segment the bag and print a summary; return the exit code (1 if no frame decoded)."""
    from yolact_ros.checkpoint import CheckpointError
    from yolact_ros.inference import Segmenter
    from yolact_ros.ros.bag_tool import BagError, check_job, output_topics, segment_bag
    from yolact_ros.ros.frame_pipeline import OutputOptions
    from yolact_ros.ros.params import check_classes

    weights = resolve_weights(args.weights)
    params = node_params(args, weights)
    check_config(params.config or None)
    options = OutputOptions.from_params(params, instance_mask=args.instance_mask,
                                        overlay=args.overlay, markers=True, points=True)
    depth = bag_depth(args, params)
    try:  # the bag, topic and paths first: fail before loading the model
        output_topics(args.namespace, options)
        check_job(args.input, args.output, image_topic=args.image_topic,
                  compressed=args.compressed, overwrite=args.overwrite)
        if depth is not None:
            from yolact_ros.ros.bag_depth import check_depth_topics

            check_depth_topics(args.input, depth)
    except BagError as error:
        raise CommandError(str(error)) from None
    apply_threads(args.threads)
    try:
        segmenter = Segmenter.from_weights(
            weights, config=params.config or None, device=params.device, half=params.half)
    except (CheckpointError, ValueError) as error:
        raise CommandError(f'cannot load weights {weights}: {error}') from None
    if args.weights is None:
        announce_bundled(segmenter)
    reason = check_classes(params.classes, segmenter.class_names)
    if reason is not None:
        raise CommandError(f'--classes: {reason}')
    segmenter.postprocess = params.postprocess(segmenter.class_names)
    custom_data = {'yolact_ros.weights': weights.name, 'yolact_ros.config': segmenter.config.name,
                   'yolact_ros.source': str(args.input)}
    try:
        report = segment_bag(
            args.input, args.output, segmenter, image_topic=args.image_topic, options=options,
            score_threshold=params.score_threshold, compressed=args.compressed,
            namespace=args.namespace, storage=args.storage, distro=args.distro,
            overwrite=args.overwrite, custom_data=custom_data,
            tracker=params.tracker_config() if args.track else None, depth=depth)
    except BagError as error:
        raise CommandError(str(error)) from None

    stages = report.stage_ms
    written = ', '.join(f'{name} {count}' for name, count in report.counts.items())
    print(f'Segmented {report.processed} of {report.frames} frames of {report.input_topic} '
          f'({report.input_type}) with {weights.name} on {segmenter.device}: '
          f'{report.instances} instances ({report.instances / max(report.processed, 1):.1f} '
          f'per frame), {stages["total"]:.1f} ms per frame (decode {stages["decode"]:.1f}, '
          f'preprocess {stages["preprocess"]:.1f}, inference {stages["inference"]:.1f}, '
          f'postprocess {stages["postprocess"]:.1f}, messages {stages["build"]:.1f}). '
          f'Wrote {report.output} ({args.storage}): {written}.')
    if report.depth is not None:
        counts = report.depth
        missing = ('' if counts.camera_info_read
                   else f'; no camera_info on {depth.camera_info_topic}')
        print(f'{counts.paired} of {report.frames} frames paired with depth within '
              f'{params.depth_max_skew:g} s{missing}')
    if report.bad_frames:
        print(f'{len(report.bad_frames)} bad frame(s) skipped:', file=sys.stderr)
        for bad in report.bad_frames[:10]:
            print(f'  frame {bad.index} (log time {bad.log_time_ns} ns): {bad.reason}',
                  file=sys.stderr)
        if len(report.bad_frames) > 10:
            print(f'  ... and {len(report.bad_frames) - 10} more', file=sys.stderr)
    if report.processed == 0:
        print(f'yolact bag: error: no frame of {report.input_topic} could be decoded',
              file=sys.stderr)
        return 1
    return 0
