"""``yolact bag`` output decoded by rclpy with the built yolact_ros_msgs / vision_msgs classes."""

import _ros_gate  # noqa: F401, I100 - skips this module where rclpy cannot run
import numpy as np
import pytest
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image
from test_bag import (
    BAD_INDEX, log_time, make_input_bag, NODE_PARAMS, RAW_FRAMES, read_bag, SCORE_THRESHOLD,
    stamp, TOPIC)
from vision_msgs.msg import Detection2DArray, LabelInfo
from yolact_ros_msgs.msg import InstanceArray

from yolact_ros.ros.bag_tool import segment_bag
from yolact_ros.ros.frame_pipeline import OutputOptions

RCLPY_TYPES = {'yolact_ros_msgs/msg/InstanceArray': InstanceArray,
               'vision_msgs/msg/Detection2DArray': Detection2DArray,
               'vision_msgs/msg/LabelInfo': LabelInfo, 'sensor_msgs/msg/Image': Image}


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_rclpy_deserializes_every_output_message(tmp_path, tiny_weights, storage):
    from rosbags.rosbag2 import Reader

    from yolact_ros.inference import Segmenter

    segmenter = Segmenter.from_weights(tiny_weights, device='cpu',
                                       postprocess=NODE_PARAMS.postprocess())
    source = make_input_bag(tmp_path / 'in')
    options = OutputOptions.from_params(NODE_PARAMS, instance_mask=True, overlay=True)
    segment_bag(source, tmp_path / 'out', segmenter, image_topic=TOPIC, options=options,
                score_threshold=SCORE_THRESHOLD, storage=storage, progress=False)

    by_rosbags = read_bag(tmp_path / 'out')
    by_rclpy = {}
    with Reader(tmp_path / 'out') as reader:
        for connection, time_ns, raw in reader.messages():
            by_rclpy.setdefault(connection.topic, []).append(
                (time_ns, deserialize_message(bytes(raw), RCLPY_TYPES[connection.msgtype])))
    assert {topic: len(messages) for topic, messages in by_rclpy.items()} == {
        topic: len(messages) for topic, (_, messages) in by_rosbags.items()}
    good = [i for i in range(len(RAW_FRAMES)) if i != BAD_INDEX]
    instances = by_rclpy['/instances']
    assert [t for t, _ in instances] == [log_time(i) for i in good]
    assert [(m.header.stamp.sec * 10**9 + m.header.stamp.nanosec, m.header.frame_id)
            for _, m in instances] == [(stamp(i), f'cam_{i}') for i in good]
    for (_, a), (_, b) in zip(instances, by_rosbags['/instances'][1]):
        assert [(i.id, i.class_name, i.score, i.mask.area, bytes(i.mask.data))
                for i in a.instances] == [(i.id, i.class_name, i.score, i.mask.area,
                                           i.mask.data.tobytes()) for i in b.instances]
    detections = by_rclpy['/detections'][0][1]
    assert [d.id for d in detections.detections] == ['1', '2', '3']
    assert [c.class_name for c in by_rclpy['/label_info'][0][1].class_map] == [
        'circle', 'square', 'ring']
    mask = by_rclpy['/instance_mask'][0][1]
    np.testing.assert_array_equal(np.frombuffer(bytes(mask.data), np.uint8),
                                  by_rosbags['/instance_mask'][1][0][1].data)
