"""``yolact bag``: rosbag2 in (MCAP, sqlite3), the node's topics out; no rclpy needed.

Input bags are written with rosbags; outputs are read back with rosbags (from the definitions the
bag embeds) and, for MCAP, with the independent ``mcap-ros2-support`` decoder.
"""

from pathlib import Path

import cv2
import numpy as np
import pytest
from test_image_conversion import encode

from yolact_ros.cli.main import main
from yolact_ros.ros.bag_tool import segment_bag
from yolact_ros.ros.frame_pipeline import OutputOptions
from yolact_ros.ros.mask_encoding import decode_mask, RLE_COCO
from yolact_ros.ros.messages import build_header, label_image, rosbags_message_types
from yolact_ros.ros.msg_definitions import rosbags_typestore
from yolact_ros.ros.params import NodeParams

TOPIC = '/cam/image_raw'
HEIGHT, WIDTH = 48, 64
SCORE_THRESHOLD, MAX_DETECTIONS = 0.05, 3
TYPESTORE = rosbags_typestore()
TYPES = rosbags_message_types(TYPESTORE)


def pattern(seed: int) -> np.ndarray:
    """Return a random BGR ``uint8[48, 64, 3]`` frame."""
    return np.random.default_rng(seed).integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8)


def stamp(index: int) -> int:
    """Header stamp of frame ``index`` (capture time; differs from the log time)."""
    return 1_700_000_000_123_456_789 + index * 33_333_333


def log_time(index: int) -> int:
    """Log time of frame ``index`` in the input bag."""
    return 1_700_000_000_200_000_000 + index * 33_333_333 + 1_000


def raw_image(encoding: str, bgr: np.ndarray, index: int, truncate: int = 0):
    """Return a rosbags ``sensor_msgs/Image`` of ``bgr`` in ``encoding`` (data cut short)."""
    step, data = encode(encoding, bgr)
    data = np.frombuffer(data, np.uint8)[:len(data) - truncate]
    return TYPESTORE.types['sensor_msgs/msg/Image'](
        header=build_header(TYPES, stamp(index), f'cam_{index}'), height=bgr.shape[0],
        width=bgr.shape[1], encoding=encoding, is_bigendian=0, step=step, data=data)


def compressed_image(payload: bytes, index: int):
    """Return a rosbags ``sensor_msgs/CompressedImage`` holding ``payload``."""
    return TYPESTORE.types['sensor_msgs/msg/CompressedImage'](
        header=build_header(TYPES, stamp(index), f'cam_{index}'), format='jpeg',
        data=np.frombuffer(payload, np.uint8))


# Frame index -> (encoding, seed, bytes cut from the data): two good encodings, one mono16 and
# a truncated frame (bad). The decoded image of each good frame is ``expected_bgr(index)``.
RAW_FRAMES = [('bgr8', 0, 0), ('rgb8', 1, 0), ('bgr8', 2, 5), ('mono16', 3, 0)]
BAD_INDEX = 2


def expected_bgr(index: int) -> np.ndarray:
    """Return the BGR image the node's decoding must give for frame ``index``."""
    encoding, seed, _ = RAW_FRAMES[index]
    bgr = pattern(seed)
    return np.repeat(bgr[..., 1:2], 3, axis=2) if encoding == 'mono16' else bgr


def jpeg(seed: int) -> bytes:
    ok, data = cv2.imencode('.jpg', pattern(seed))
    assert ok
    return data.tobytes()


def write_bag(path: Path, messages, storage: str = 'mcap') -> Path:
    """Write ``(topic, log_time, rosbags message)`` triples into a rosbag2 at ``path``."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        connections = {}
        for topic, time_ns, msg in messages:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msg.__msgtype__,
                                                           typestore=TYPESTORE)
            writer.write(connections[topic], time_ns,
                         TYPESTORE.serialize_cdr(msg, msg.__msgtype__))
    return path


def make_input_bag(path: Path, storage: str = 'mcap') -> Path:
    """Write the test input: raw frames on TOPIC, JPEGs (one corrupt) on TOPIC/compressed."""
    string = TYPESTORE.types['std_msgs/msg/String']
    messages = [('/chatter', log_time(0) - 1, string(data='not an image'))]
    for index, (encoding, seed, cut) in enumerate(RAW_FRAMES):
        messages.append((TOPIC, log_time(index), raw_image(encoding, pattern(seed), index, cut)))
    messages.append((TOPIC + '/compressed', log_time(0), compressed_image(jpeg(5), 0)))
    messages.append((TOPIC + '/compressed', log_time(1), compressed_image(b'\xff\xd8garbage', 1)))
    return write_bag(path, messages, storage)


def read_bag(path: Path):
    """Return ``{topic: (msgtype, [(log_time, message), ...])}`` decoded by rosbags.

    No default typestore: every type must come from the definitions embedded in the bag.
    """
    from rosbags.highlevel import AnyReader

    topics = {}
    with AnyReader([path]) as reader:
        for connection in reader.connections:
            topics[connection.topic] = (connection.msgtype, [])
        for connection, time_ns, raw in reader.messages():
            topics[connection.topic][1].append(
                (time_ns, reader.deserialize(raw, connection.msgtype)))
    return topics


def stamp_ns(header) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


NODE_PARAMS = NodeParams.from_values({'score_threshold': SCORE_THRESHOLD,
                                      'max_detections': MAX_DETECTIONS})


@pytest.fixture(scope='module')
def segmenter(tiny_weights):
    from yolact_ros.inference import Segmenter

    return Segmenter.from_weights(tiny_weights, device='cpu',
                                  postprocess=NODE_PARAMS.postprocess())


@pytest.fixture(scope='module', params=[('mcap', 'sqlite3'), ('sqlite3', 'mcap')],
                ids=['mcap-to-sqlite3', 'sqlite3-to-mcap'])
def round_trip(request, tmp_path_factory, segmenter):
    """Segment the raw topic of an input bag with every output on; return (out, report)."""
    in_storage, out_storage = request.param
    folder = tmp_path_factory.mktemp(f'bag_{in_storage}')
    source = make_input_bag(folder / 'in', in_storage)
    options = OutputOptions.from_params(NODE_PARAMS, instance_mask=True, overlay=True)
    report = segment_bag(source, folder / 'out', segmenter, image_topic=TOPIC,
                         options=options, score_threshold=SCORE_THRESHOLD,
                         storage=out_storage, progress=False)
    return folder / 'out', out_storage, report


def test_output_has_the_node_topics_types_and_counts(round_trip):
    out, storage, report = round_trip
    topics = read_bag(out)
    good = len(RAW_FRAMES) - 1
    assert {topic: (msgtype, len(messages)) for topic, (msgtype, messages) in topics.items()} == {
        '/instances': ('yolact_ros_msgs/msg/InstanceArray', good),
        '/detections': ('vision_msgs/msg/Detection2DArray', good),
        '/label_info': ('vision_msgs/msg/LabelInfo', 1),
        '/instance_mask': ('sensor_msgs/msg/Image', good),
        '/overlay': ('sensor_msgs/msg/Image', good)}
    assert next(out.glob('*.mcap' if storage == 'mcap' else '*.db3')).is_file()
    assert (report.frames, report.processed, report.input_type) == (
        len(RAW_FRAMES), good, 'sensor_msgs/msg/Image')
    assert report.counts['/instances'] == good and report.counts['/label_info'] == 1
    label_info = topics['/label_info'][1][0][1]
    assert [(c.class_id, c.class_name) for c in label_info.class_map] == [
        (0, 'circle'), (1, 'square'), (2, 'ring')]
    assert label_info.threshold == pytest.approx(SCORE_THRESHOLD)
    assert not list(out.parent.glob('.out.*'))  # staging folder removed


def test_log_times_and_headers_are_the_inputs(round_trip):
    out, _, _ = round_trip
    topics = read_bag(out)
    good = [i for i in range(len(RAW_FRAMES)) if i != BAD_INDEX]
    for topic in ('/instances', '/detections', '/instance_mask', '/overlay'):
        messages = topics[topic][1]
        assert [t for t, _ in messages] == [log_time(i) for i in good], topic
        assert [stamp_ns(m.header) for _, m in messages] == [stamp(i) for i in good], topic
        assert [m.header.frame_id for _, m in messages] == [f'cam_{i}' for i in good], topic
    assert topics['/label_info'][1][0][0] == log_time(0)  # before the first frame's outputs


def test_outputs_are_the_segmenters_detections_on_the_decoded_frame(round_trip, segmenter):
    out, _, _ = round_trip
    topics = read_bag(out)
    good = [i for i in range(len(RAW_FRAMES)) if i != BAD_INDEX]
    pairs = zip(good, topics['/instances'][1], topics['/detections'][1],
                topics['/instance_mask'][1], topics['/overlay'][1])
    for index, (_, instances), (_, detections), (_, mask_image), (_, overlay) in pairs:
        expected = segmenter(expected_bgr(index))
        assert len(expected) == MAX_DETECTIONS  # the random tiny model scores > 0.05
        assert (instances.height, instances.width) == (HEIGHT, WIDTH)
        np.testing.assert_allclose([i.score for i in instances.instances], expected.scores)
        assert [i.class_name for i in instances.instances] == expected.class_names
        assert [i.id for i in instances.instances] == [1, 2, 3]
        for instance, mask in zip(instances.instances, expected.masks):
            np.testing.assert_array_equal(decode_mask(instance.mask, HEIGHT, WIDTH), mask)
        assert instances.latency_ms > 0  # offline: the frame's own processing time
        assert [d.id for d in detections.detections] == ['1', '2', '3']
        assert [d.results[0].hypothesis.class_id for d in detections.detections] == \
            expected.class_names
        assert (mask_image.encoding, mask_image.height, mask_image.width) == (
            'mono16', HEIGHT, WIDTH)
        np.testing.assert_array_equal(
            np.frombuffer(mask_image.data.tobytes(), '<u2').reshape(HEIGHT, WIDTH),
            label_image(expected))
        assert (overlay.encoding, overlay.height, overlay.width, overlay.step) == (
            'bgr8', HEIGHT, WIDTH, WIDTH * 3)


def test_bad_frame_is_skipped_and_counted(round_trip):
    _, _, report = round_trip
    assert [(bad.index, bad.log_time_ns) for bad in report.bad_frames] == [
        (BAD_INDEX, log_time(BAD_INDEX))]
    assert f'expected height * step = {HEIGHT * WIDTH * 3} bytes of data, got ' \
        f'{HEIGHT * WIDTH * 3 - 5}' in report.bad_frames[0].reason


def test_mcap_output_decodes_with_mcap_ros2_support(round_trip):
    out, storage, _ = round_trip
    if storage != 'mcap':
        pytest.skip('mcap-ros2-support reads MCAP only')
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    by_rosbags = read_bag(out)
    decoded = {}
    with open(next(out.glob('*.mcap')), 'rb') as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        for schema, channel, message, msg in reader.iter_decoded_messages():
            decoded.setdefault(channel.topic, (schema.name, []))[1].append(
                (message.log_time, msg))
    assert {topic: (name, len(msgs)) for topic, (name, msgs) in decoded.items()} == {
        topic: (msgtype, len(msgs)) for topic, (msgtype, msgs) in by_rosbags.items()}
    for (time_a, a), (time_b, b) in zip(decoded['/instances'][1], by_rosbags['/instances'][1]):
        assert time_a == time_b and stamp_ns(a.header) == stamp_ns(b.header)
        assert [(i.id, i.class_name, i.mask.area, bytes(i.mask.data)) for i in a.instances] == [
            (i.id, i.class_name, i.mask.area, i.mask.data.tobytes()) for i in b.instances]
        assert a.instances[0].bbox.size_x == b.instances[0].bbox.size_x
    a, b = decoded['/detections'][1][0][1], by_rosbags['/detections'][1][0][1]
    assert [d.results[0].hypothesis.score for d in a.detections] == [
        d.results[0].hypothesis.score for d in b.detections]
    assert decoded['/label_info'][1][0][1].class_map[2].class_name == 'ring'


def test_compressed_topic_with_a_corrupt_jpeg(tmp_path, segmenter):
    source = make_input_bag(tmp_path / 'in')
    report = segment_bag(source, tmp_path / 'out', segmenter, image_topic=TOPIC,
                         compressed=True, options=OutputOptions(), score_threshold=0.05,
                         progress=False)
    assert (report.input_topic, report.input_type) == (
        TOPIC + '/compressed', 'sensor_msgs/msg/CompressedImage')
    assert (report.frames, report.processed, len(report.bad_frames)) == (2, 1, 1)
    assert report.bad_frames[0].index == 1
    assert 'cannot decode compressed image' in report.bad_frames[0].reason
    topics = read_bag(tmp_path / 'out')
    assert sorted(topics) == ['/detections', '/instances', '/label_info']
    instances = topics['/instances'][1][0][1]
    expected = segmenter(cv2.imdecode(np.frombuffer(jpeg(5), np.uint8), cv2.IMREAD_COLOR))
    np.testing.assert_allclose([i.score for i in instances.instances], expected.scores)


# --------------------------------------------------------------------------- command line


def run_cli(capsys, *args):
    code = main(['bag', *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_writes_a_namespaced_sqlite3_bag_for_humble_readers(tmp_path, capsys, tiny_weights):
    import yaml

    source = make_input_bag(tmp_path / 'in')
    code, out, err = run_cli(
        capsys, source, tmp_path / 'out', '--image-topic', TOPIC, '--weights', tiny_weights,
        '--device', 'cpu', '--score-threshold', 0.05, '--max-detections', 2, '--classes',
        'circle', 'ring', '--encoding', 'rle_coco', '--detection-class-id', 'id',
        '--namespace', 'robot/cam', '--storage', 'sqlite3', '--distro', 'humble')
    assert code == 0, err
    assert 'Segmented 3 of 4 frames of /cam/image_raw (sensor_msgs/msg/Image)' in out
    assert '/robot/cam/instances 3, /robot/cam/detections 3, /robot/cam/label_info 1' in out
    assert f'frame {BAD_INDEX} (log time {log_time(BAD_INDEX)} ns)' in err
    metadata = yaml.safe_load((tmp_path / 'out' / 'metadata.yaml').read_text())
    info = metadata['rosbag2_bagfile_information']
    assert (info['version'], info['storage_identifier']) == (8, 'sqlite3')
    assert info['custom_data']['yolact_ros.weights'] == Path(tiny_weights).name
    topics = read_bag(tmp_path / 'out')
    assert sorted(topics) == ['/robot/cam/detections', '/robot/cam/instances',
                              '/robot/cam/label_info']
    all_instances = [i for _, m in topics['/robot/cam/instances'][1] for i in m.instances]
    assert all_instances and len(all_instances) <= 6
    assert {i.class_name for i in all_instances} <= {'circle', 'ring'}
    assert {i.mask.encoding for i in all_instances} == {RLE_COCO}
    hypotheses = {d.results[0].hypothesis.class_id
                  for _, m in topics['/robot/cam/detections'][1] for d in m.detections}
    assert hypotheses <= {'0', '2'} and hypotheses


def test_cli_missing_topic_lists_the_image_topics(tmp_path, capsys, tiny_weights):
    source = make_input_bag(tmp_path / 'in')
    code, _, err = run_cli(capsys, source, tmp_path / 'out', '--image-topic', '/cam/image',
                           '--weights', tiny_weights)
    assert code == 2
    assert ("topic '/cam/image' is not in" in err and '/cam/image_raw (sensor_msgs/msg/Image, '
            '4 msgs), /cam/image_raw/compressed (sensor_msgs/msg/CompressedImage, 2 msgs)' in err)
    assert '/chatter' not in err and not (tmp_path / 'out').exists()

    only_compressed = write_bag(tmp_path / 'in2', [
        (TOPIC + '/compressed', log_time(0), compressed_image(jpeg(0), 0))])
    code, _, err = run_cli(capsys, only_compressed, tmp_path / 'out', '--image-topic', TOPIC,
                           '--weights', tiny_weights)
    assert code == 2 and 'pass --compressed' in err


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_cli_corrupt_bag_is_a_clear_error(tmp_path, capsys, tiny_weights, storage):
    source = make_input_bag(tmp_path / 'in', storage)
    data_file = next(source.glob('*.mcap' if storage == 'mcap' else '*.db3'))
    data_file.write_bytes(data_file.read_bytes()[:200])
    code, _, err = run_cli(capsys, source, tmp_path / 'out', '--image-topic', TOPIC,
                           '--weights', tiny_weights)
    assert code == 2
    assert f'yolact bag: error: cannot read bag {source}: ' in err
    assert ('mcap recover' in err) == (storage == 'mcap')
    assert 'Traceback' not in err and not (tmp_path / 'out').exists()

    code, _, err = run_cli(capsys, data_file.parent / 'missing', tmp_path / 'out',
                           '--image-topic', TOPIC, '--weights', tiny_weights)
    assert code == 2 and 'does not exist' in err


def test_cli_refuses_an_existing_output_unless_overwrite(tmp_path, capsys, tiny_weights):
    source = make_input_bag(tmp_path / 'in')
    old = write_bag(tmp_path / 'out', [('/old', 1, TYPESTORE.types['std_msgs/msg/String'](
        data='old'))])
    args = [source, old, '--image-topic', TOPIC + '/compressed', '--weights', tiny_weights,
            '--device', 'cpu']
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and f'output {old} exists; pass --overwrite to replace it' in err
    assert list(read_bag(old)) == ['/old']

    code, _, err = run_cli(capsys, *args, '--overwrite')
    assert code == 0, err
    assert sorted(read_bag(old)) == ['/detections', '/instances', '/label_info']

    not_a_bag = tmp_path / 'notes'
    not_a_bag.mkdir()
    (not_a_bag / 'keep.txt').write_text('mine')
    code, _, err = run_cli(capsys, source, not_a_bag, '--image-topic', TOPIC, '--weights',
                           tiny_weights, '--overwrite')
    assert code == 2 and 'is not a rosbag2 folder; not replacing it' in err
    assert (not_a_bag / 'keep.txt').read_text() == 'mine'


def test_cli_only_bad_frames_exits_1(tmp_path, capsys, tiny_weights):
    source = write_bag(tmp_path / 'in', [
        (TOPIC, log_time(i), raw_image('bgr8', pattern(i), i, truncate=1)) for i in range(2)])
    code, out, err = run_cli(capsys, source, tmp_path / 'out', '--image-topic', TOPIC,
                             '--weights', tiny_weights, '--device', 'cpu')
    assert code == 1
    assert 'Segmented 0 of 2 frames' in out
    assert '2 bad frame(s) skipped' in err and 'no frame of /cam/image_raw could be decoded' in err


def test_cli_user_errors_name_the_value(tmp_path, capsys, tiny_weights, monkeypatch):
    source = make_input_bag(tmp_path / 'in')
    code, _, err = run_cli(capsys, source, tmp_path / 'out', '--image-topic', TOPIC,
                           '--weights', tiny_weights, '--score-threshold', 1.5)
    assert code == 2 and 'score_threshold: 1.5 is outside [0.0, 1.0]' in err
    code, _, err = run_cli(capsys, source, tmp_path / 'out', '--image-topic', TOPIC,
                           '--weights', tiny_weights, '--namespace', 'robot/1cam')
    assert code == 2 and "invalid namespace 'robot/1cam'" in err

    weights_dir = tmp_path / 'weights'  # a weights folder without the bundled model
    weights_dir.mkdir()
    (weights_dir / 'manifest.json').write_text('{"official": []}')
    monkeypatch.setenv('YOLACT_WEIGHTS_DIR', str(weights_dir))
    code, _, err = run_cli(capsys, source, tmp_path / 'out', '--image-topic', TOPIC)
    assert code == 2
    assert f'bundled demo model {weights_dir / "yolact_resnet18_synth.safetensors"} is ' \
        'missing' in err and 'pass --weights' in err
