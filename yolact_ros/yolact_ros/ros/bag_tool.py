"""Segment every image of a rosbag2 and write the node's outputs to a new bag (``yolact bag``).

No ROS install needed: bags are read and written with ``rosbags`` (MCAP or sqlite3), frames go
through :func:`~yolact_ros.ros.frame_pipeline.process_frame` exactly as in ``segment_node``, and
the output bag embeds the message definitions of every topic (``yolact_ros_msgs`` and
``vision_msgs`` included), so readers without those packages decode it. Each output message is
logged at its input message's log time and carries the input header verbatim.
"""

import contextlib
from dataclasses import dataclass, field
import os
from pathlib import Path
import re
import shutil
import sys
import tempfile
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

import numpy as np

from yolact_ros.ros.frame_pipeline import (
    BadFrameError, InferenceError, OutputOptions, process_frame)
from yolact_ros.ros.messages import build_header, build_label_info
from yolact_ros.structures import Detections
from yolact_ros.tracking import StreamTracker, TrackerConfig

IMAGE_TYPE = 'sensor_msgs/msg/Image'
COMPRESSED_TYPE = 'sensor_msgs/msg/CompressedImage'
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE)

# Output topic (relative name) -> message type, as ``segment_node`` publishes them.
OUTPUT_TYPES: Dict[str, str] = {
    'instances': 'yolact_ros_msgs/msg/InstanceArray',
    'detections': 'vision_msgs/msg/Detection2DArray',
    'label_info': 'vision_msgs/msg/LabelInfo',
    'instance_mask': IMAGE_TYPE,
    'overlay': IMAGE_TYPE,
    'detections_3d': 'vision_msgs/msg/Detection3DArray',
    'markers': 'visualization_msgs/msg/MarkerArray',
    'points': 'sensor_msgs/msg/PointCloud2',
}
STORAGES = ('mcap', 'sqlite3')
# rosbag2 metadata version per ROS 2 distro of the readers (Humble reads up to version 8).
BAG_VERSIONS = {'jazzy': 9, 'humble': 8}

_NAME_TOKEN = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')


class BagError(ValueError):
    """A problem with the input bag, the topic or the output path; the text says which."""


@dataclass(frozen=True)
class BadFrame:
    """A frame that was skipped: its index on the topic, log time and why."""

    index: int
    log_time_ns: int
    reason: str


@dataclass
class BagReport:
    """What :func:`segment_bag` did.

    Attributes:
        input_topic, input_type: the image topic read and its message type.
        output: the bag written.
        topics: output topic (full name) -> message type.
        counts: output topic (full name) -> messages written.
        frames: image messages read.
        processed: frames segmented (``frames`` minus the bad ones).
        instances: detections written over all frames.
        bad_frames: the frames skipped.
        stage_ms: mean milliseconds per processed frame of each stage (decode, preprocess,
            inference, postprocess, build) and ``total``.
        depth: with a depth input, the frames paired with depth and left 2D
            (:class:`~yolact_ros.ros.bag_depth.DepthCounts`); else None.
    """

    input_topic: str
    input_type: str
    output: Path
    topics: Dict[str, str]
    counts: Dict[str, int] = field(default_factory=dict)
    frames: int = 0
    processed: int = 0
    instances: int = 0
    bad_frames: List[BadFrame] = field(default_factory=list)
    stage_ms: Dict[str, float] = field(default_factory=dict)
    depth: Optional[Any] = None


def output_topics(namespace: str, options: OutputOptions) -> Dict[str, str]:
    """Return full output topic name -> message type for a node namespace and the options.

    ``namespace`` is ``'/'`` (the outputs are ``/instances``, ...) or a ROS namespace such as
    ``/robot/camera`` (a leading ``/`` is added when missing).

    Raises:
        BagError: ``namespace`` is not a valid ROS namespace.
    """
    ns = namespace.strip()
    if not ns.startswith('/'):
        ns = '/' + ns
    ns = ns.rstrip('/')
    tokens = ns.split('/')[1:] if ns else []
    if any(not _NAME_TOKEN.match(token) for token in tokens):
        raise BagError(f'invalid namespace {namespace!r}: use /name/name with letters, digits '
                       'and underscores, each part not starting with a digit')
    wanted = {'instances': options.instances, 'detections': options.detections,
              'label_info': True, 'instance_mask': options.instance_mask,
              'overlay': options.overlay, 'detections_3d': options.detections_3d,
              'markers': options.markers, 'points': options.points}
    return {f'{ns}/{name}': msgtype for name, msgtype in OUTPUT_TYPES.items() if wanted[name]}


def resolve_input(path: Path) -> Path:
    """Return the rosbag2 folder for ``path`` (the folder, or a storage file inside one).

    Raises:
        BagError: nothing at ``path``, or no ``metadata.yaml`` beside the data.
    """
    path = Path(path)
    if not path.exists():
        raise BagError(f'input bag {path} does not exist')
    if path.is_file():
        if (path.parent / 'metadata.yaml').is_file():
            return path.parent
        raise BagError(f'{path} is a file, not a rosbag2 folder; pass the folder holding the '
                       '.mcap / .db3 file and its metadata.yaml (`ros2 bag reindex FOLDER` '
                       'writes a missing metadata.yaml)')
    if not (path / 'metadata.yaml').is_file():
        raise BagError(f'{path} is not a rosbag2 folder: it has no metadata.yaml')
    return path


def _check_output(output: Path, source: Path, overwrite: bool) -> None:
    if output.resolve() == source.resolve() or source.resolve() in output.resolve().parents:
        raise BagError(f'output {output} must not be the input bag {source} or inside it')
    if not output.exists() and not output.is_symlink():
        return
    if not overwrite:
        raise BagError(f'output {output} exists; pass --overwrite to replace it')
    if not output.is_dir() or output.is_symlink() or not (output / 'metadata.yaml').is_file():
        raise BagError(f'output {output} exists and is not a rosbag2 folder; not replacing it')


def _topic_table(reader) -> str:
    rows = sorted((c.topic, c.msgtype, c.msgcount) for c in reader.connections)
    images = [f'{topic} ({msgtype}, {count} msgs)' for topic, msgtype, count in rows
              if msgtype in IMAGE_TYPES]
    return ', '.join(images) if images else 'none'


def _select_topic(reader, source: Path, image_topic: str, compressed: bool) -> Tuple[str, list]:
    topic = image_topic if image_topic.startswith('/') else '/' + image_topic
    if compressed and not topic.endswith('/compressed'):
        topic += '/compressed'
    connections = [c for c in reader.connections if c.topic == topic]
    if not connections:
        hint = ''
        if not compressed and any(c.topic == topic + '/compressed' for c in reader.connections):
            hint = f'; for {topic}/compressed pass --compressed'
        raise BagError(f"topic '{topic}' is not in {source}; its image topics: "
                       f'{_topic_table(reader)}{hint}')
    types = sorted({c.msgtype for c in connections})
    if any(t not in IMAGE_TYPES for t in types):
        raise BagError(f"topic '{topic}' in {source} has type {', '.join(types)}, not "
                       f'{IMAGE_TYPE} or {COMPRESSED_TYPE}; image topics: {_topic_table(reader)}')
    if sum(c.msgcount for c in connections) == 0:
        raise BagError(f"topic '{topic}' in {source} has no messages")
    return topic, connections


@contextlib.contextmanager
def open_bag(source: Path, typestore=None) -> Iterator:
    """Open rosbag2 folder ``source`` with ``rosbags``' ``AnyReader``; close it on exit.

    ``typestore`` decodes bags that embed no message definitions (default: Jazzy's with
    vision_msgs and yolact_ros_msgs).

    Raises:
        BagError: the bag cannot be opened (corrupt metadata or storage, missing files).
    """
    from rosbags.highlevel import AnyReader, AnyReaderError
    from rosbags.rosbag2 import ReaderError

    from yolact_ros.ros.msg_definitions import rosbags_typestore

    try:
        reader = AnyReader([Path(source)], default_typestore=typestore or rosbags_typestore())
        reader.open()
    except (AnyReaderError, ReaderError, OSError) as error:
        hint = ''
        if any(Path(source).glob('*.mcap')):
            hint = ' (an MCAP file cut short by a crash can be rescued with `mcap recover`)'
        raise BagError(f'cannot read bag {source}: {error}{hint}') from None
    try:
        yield reader
    finally:
        reader.close()


@dataclass(frozen=True)
class ImageTopic:
    """The input topic: full name, message type and message count."""

    name: str
    msgtype: str
    count: int


def check_job(source: Path, output: Path, *, image_topic: str, compressed: bool = False,
              overwrite: bool = False) -> ImageTopic:
    """Check the input bag, its image topic and the output path before any work is done.

    See :func:`segment_bag` for the arguments.

    Raises:
        BagError: the first problem found, naming the bag, the topic or the path.
    """
    source = resolve_input(source)
    _check_output(Path(output), source, overwrite)
    with open_bag(source) as reader:
        topic, connections = _select_topic(reader, source, image_topic, compressed)
    return ImageTopic(topic, connections[0].msgtype, sum(c.msgcount for c in connections))


def _qos(latched: bool):
    from rosbags.interfaces import (
        Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime)

    default_time = QosTime(sec=0, nsec=0)
    return Qos(history=QosHistory.KEEP_LAST, depth=1 if latched else 5,
               reliability=QosReliability.RELIABLE,
               durability=(QosDurability.TRANSIENT_LOCAL if latched
                           else QosDurability.VOLATILE),
               deadline=default_time, lifespan=default_time,
               liveliness=QosLiveliness.AUTOMATIC, liveliness_lease_duration=default_time,
               avoid_ros_namespace_conventions=False)


class _BagSink:
    """The output bag's connections; writes messages and counts them per topic."""

    def __init__(self, writer, typestore, topics: Mapping[str, str]) -> None:
        self._writer, self._typestore, self._topics = writer, typestore, dict(topics)
        self._connections = {
            name: writer.add_connection(name, msgtype, typestore=typestore,
                                        offered_qos_profiles=[_qos(name.endswith('/label_info'))])
            for name, msgtype in topics.items()}
        self.by_relative_name = {name.rsplit('/', 1)[1]: name for name in topics}
        self.counts = dict.fromkeys(topics, 0)

    def write(self, relative_name: str, message, log_time_ns: int) -> None:
        """Serialise ``message`` (CDR) onto the output topic ``relative_name`` at a log time."""
        name = self.by_relative_name[relative_name]
        self._writer.write(self._connections[name], log_time_ns,
                           self._typestore.serialize_cdr(message, self._topics[name]))
        self.counts[name] += 1


_STAGES = ('decode', 'preprocess', 'inference', 'postprocess', 'build', 'total')


def _segment_messages(reader, connections: list, sink: _BagSink, segmenter, types,
                      options: OutputOptions, score_threshold: float, report: BagReport,
                      progress: bool, tracker: Optional[StreamTracker] = None,
                      depth=None) -> None:
    """Run every image message through the frame pipeline into ``sink``; fill ``report``."""
    from rosbags.highlevel import AnyReaderError
    from tqdm import tqdm

    from yolact_ros.ros.bag_depth import DepthCounts, paired_frames

    sums = dict.fromkeys(_STAGES, 0.0)
    total = sum(c.msgcount for c in connections)
    with tqdm(total=total, desc=report.input_topic, unit='frame', disable=not progress,
              file=sys.stderr) as bar:
        report.depth = DepthCounts() if depth is not None else None
        for index, log_time, msg, depth_frame in paired_frames(
                reader, connections, depth, report.depth or DepthCounts()):
            bar.update(1)
            report.frames += 1
            if index == 0:  # the node publishes it once, before any frame
                sink.write('label_info', build_label_info(
                    types, build_header(types, log_time), segmenter.class_names,
                    score_threshold), log_time)
            try:
                if isinstance(msg, Exception):  # the CDR could not be deserialised
                    raise msg
                result = process_frame(msg, segmenter, types, options, tracker=tracker,
                                       trails=tracker and tracker.trails, depth=depth_frame)
            except (AnyReaderError, BadFrameError) as error:  # undecodable CDR or image
                report.bad_frames.append(BadFrame(index, log_time, str(error)))
                bar.set_postfix(bad=len(report.bad_frames))
                continue
            except InferenceError as error:
                raise BagError(f'inference failed on frame {index} of {report.input_topic} '
                               f'(log time {log_time} ns): {error}') from None
            for name, message in result.messages.items():
                sink.write(name, message, log_time)
            report.processed += 1
            report.instances += len(result.detections)
            t = result.times
            for stage, value in zip(_STAGES, (t.decode_ms, t.preprocess_ms, t.inference_ms,
                                              t.postprocess_ms, t.build_ms, t.total_ms)):
                sums[stage] += value
    report.stage_ms = {stage: value / max(report.processed, 1) for stage, value in sums.items()}


def segment_bag(source: Path, output: Path, segmenter: Callable[[np.ndarray], Detections], *,
                image_topic: str, options: OutputOptions, score_threshold: float,
                compressed: bool = False, namespace: str = '/', storage: str = 'mcap',
                distro: str = 'jazzy', overwrite: bool = False,
                custom_data: Optional[Mapping[str, str]] = None,
                progress: bool = True, tracker: Optional[TrackerConfig] = None,
                depth: Optional[Any] = None) -> BagReport:
    """Segment every message of ``image_topic`` in bag ``source`` and write bag ``output``.

    Args:
        source: rosbag2 folder (MCAP or sqlite3), or a storage file inside one.
        output: rosbag2 folder to create; written beside it first and moved into place when
            complete, so a failed run leaves nothing at ``output``.
        segmenter: the :class:`~yolact_ros.inference.Segmenter` (``class_names`` and a call
            from BGR image to :class:`Detections`).
        image_topic: the input topic; with ``compressed``, ``image_topic/compressed``, as the
            node's ``image_transport: compressed``. ``Image`` and ``CompressedImage`` are both
            read, whatever ``compressed`` says.
        options: which outputs to write and how (the node's parameters).
        score_threshold: written into ``label_info``.
        namespace: the node namespace the output topics live in.
        storage: ``'mcap'`` or ``'sqlite3'``.
        distro: ``'jazzy'`` (rosbag2 version 9) or ``'humble'`` (version 8, for Humble readers).
        overwrite: replace an existing output bag.
        custom_data: string pairs stored in the output's metadata.
        progress: show a progress bar on stderr.
        tracker: track the instances with this configuration (the node's ``tracking.*``):
            ``Instance.track_id`` and ``Detection2D.id`` carry the track ids and the overlay
            shows them with trails, as in the node (a stamp going back restarts the tracks).
            ``None``: no tracking.
        depth: a :class:`~yolact_ros.ros.bag_depth.BagDepth`: pair each image with the depth
            frame closest in stamp and write the 3D outputs the options ask for, as the node
            with ``depth.enabled``. ``None``: 2D only.

    Raises:
        BagError: unreadable or corrupt input, missing topic, existing output, failed inference;
            the text names the file, the topic or the frame.
    """
    from rosbags.highlevel import AnyReaderError
    from rosbags.rosbag2 import ReaderError, StoragePlugin, Writer

    from yolact_ros.ros.messages import rosbags_message_types
    from yolact_ros.ros.msg_definitions import rosbags_typestore

    if storage not in STORAGES:
        raise BagError(f'storage must be one of {", ".join(STORAGES)}, got {storage!r}')
    if distro not in BAG_VERSIONS:
        raise BagError(f'distro must be one of {", ".join(BAG_VERSIONS)}, got {distro!r}')
    topics = output_topics(namespace, options)
    source, output = resolve_input(source), Path(output)
    _check_output(output, source, overwrite)
    typestore = rosbags_typestore(distro)

    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f'.{output.name}.', suffix='.partial',
                                    dir=output.parent))
    try:
        with open_bag(source, typestore) as reader:
            topic, connections = _select_topic(reader, source, image_topic, compressed)
            report = BagReport(input_topic=topic, input_type=connections[0].msgtype,
                               output=output, topics=topics)
            plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
            with Writer(staging / output.name, version=BAG_VERSIONS[distro],
                        storage_plugin=plugin) as writer:
                for key, value in (custom_data or {}).items():
                    writer.set_custom_data(key, value)
                sink = _BagSink(writer, typestore, topics)
                try:
                    _segment_messages(reader, connections, sink, segmenter,
                                      rosbags_message_types(typestore), options,
                                      score_threshold, report, progress,
                                      None if tracker is None else StreamTracker(tracker),
                                      depth)
                except (AnyReaderError, ReaderError, OSError) as error:
                    raise BagError(f'cannot read bag {source} (corrupt after {report.frames} '
                                   f'messages of {topic}?): {error}') from None
                report.counts = sink.counts
        if output.exists():  # --overwrite: checked above to be a rosbag2 folder
            shutil.rmtree(output)
        os.replace(staging / output.name, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report
