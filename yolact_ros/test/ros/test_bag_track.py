"""``yolact bag --track``: track ids in Instance.track_id and Detection2D.id, as the node."""

import numpy as np
import pytest
from test_bag import read_bag, TOPIC, TYPES, TYPESTORE, write_bag

from yolact_ros.cli.main import main
from yolact_ros.data.synthetic_sequence import sequence_frames
from yolact_ros.ros.messages import build_header
from yolact_ros.weights import demo_weights

FRAMES = 8
PERIOD_NS = 33_333_333


def sequence_bag(path, stamps_ns):
    """Write a bag of the seed-100 tracking sequence's frames (bgr8) on TOPIC."""
    image = TYPESTORE.types['sensor_msgs/msg/Image']
    messages = []
    for index, frame in enumerate(sequence_frames(len(stamps_ns), 256, seed=100)):
        height, width = frame.image.shape[:2]
        msg = image(header=build_header(TYPES, stamps_ns[index], 'cam'), height=height,
                    width=width, encoding='bgr8', is_bigendian=0, step=width * 3,
                    data=np.frombuffer(frame.image.tobytes(), np.uint8))
        messages.append((TOPIC, 1_000 + index * PERIOD_NS, msg))
    return write_bag(path, messages)


def test_bag_track_writes_track_ids_that_persist(tmp_path, capsys):
    if not demo_weights().is_file():
        pytest.skip('the bundled demo model is missing')
    stamps = [1_700_000_000_000_000_000 + i * PERIOD_NS for i in range(FRAMES)]
    source = sequence_bag(tmp_path / 'in', stamps)
    code = main(['bag', str(source), str(tmp_path / 'out'), '--image-topic', TOPIC,
                 '--device', 'cpu', '--track'])
    assert code == 0, capsys.readouterr().err
    topics = read_bag(tmp_path / 'out')
    instances = [m for _, m in topics['/instances'][1]]
    detections = [m for _, m in topics['/detections'][1]]
    assert len(instances) == FRAMES
    per_frame = []
    for array, detection_array in zip(instances, detections):
        ids = [i.track_id for i in array.instances]
        assert [d.id for d in detection_array.detections] == [str(i) for i in ids]
        assert [i.id for i in array.instances] == list(range(1, len(ids) + 1))
        per_frame.append({i for i in ids if i > 0})
    assert set.intersection(*per_frame)  # a moving object keeps its id over every frame
