"""``yolact bag`` with depth: RGB-D scenes in a bag, the node's 3D outputs out (no rclpy).

The bundled model on rendered scenes (``depth_scene``): every object found in 2D gets a 3D
position within 5 cm, written with detections_3d, markers and the labelled cloud; an image
without a depth frame within the skew stays 2D and is counted.
"""

from depth_scene import camera_info_dict, rgbd_scene
import numpy as np
import pytest
from test_bag import read_bag, write_bag

from yolact_ros.cli.main import main
from yolact_ros.data.synthetic import CATEGORIES
from yolact_ros.ros.bag_depth import BagDepth
from yolact_ros.ros.bag_tool import BagError, segment_bag
from yolact_ros.ros.frame_pipeline import OutputOptions
from yolact_ros.ros.messages import build_header, rosbags_message_types
from yolact_ros.ros.messages_3d import POINT_DTYPE
from yolact_ros.ros.msg_definitions import rosbags_typestore
from yolact_ros.ros.params import NodeParams

TYPESTORE = rosbags_typestore()
TYPES = rosbags_message_types(TYPESTORE)
CLASS_OF = dict(CATEGORIES)
COLOR, DEPTH, INFO = '/cam/color', '/cam/depth', '/cam/depth_info'
SEEDS = (1, 2, 3)  # frame 2 gets no depth frame
START = 1_700_000_000_000_000_000


def stamp(index: int) -> int:
    return START + index * 100_000_000


def messages(scenes):
    """Return the input bag's messages: camera_info once, depth logged after its colour frame."""
    image, info = TYPESTORE.types['sensor_msgs/msg/Image'], TYPESTORE.types[
        'sensor_msgs/msg/CameraInfo']
    fields = camera_info_dict()
    out = [(INFO, START - 1, info(
        header=build_header(TYPES, START, 'cam'), distortion_model='plumb_bob',
        d=np.zeros(5), k=np.array(fields['k']), r=np.array(fields['r']),
        p=np.array(fields['p']), binning_x=0, binning_y=0, width=fields['width'],
        height=fields['height'], roi=TYPES.RegionOfInterest(
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)))]
    for index, rgbd in enumerate(scenes):
        pixels = rgbd.scene.image
        out.append((COLOR, stamp(index), image(
            header=build_header(TYPES, stamp(index), 'cam'), height=256, width=256,
            encoding='bgr8', is_bigendian=0, step=256 * 3, data=pixels.reshape(-1))))
        if index != 2:
            depth = rgbd.depth_mm.astype('<u2').view(np.uint8).reshape(-1)
            out.append((DEPTH, stamp(index) + 5_000_000, image(  # 3 ms skew, logged later
                header=build_header(TYPES, stamp(index) + 3_000_000, 'cam'), height=256,
                width=256, encoding='16UC1', is_bigendian=0, step=512, data=depth)))
    return out


@pytest.fixture(scope='module')
def segmented(tmp_path_factory):
    from yolact_ros.inference import Segmenter
    from yolact_ros.weights import demo_weights

    scenes = [rgbd_scene(seed) for seed in SEEDS]
    folder = tmp_path_factory.mktemp('bag_depth')
    source = write_bag(folder / 'in', messages(scenes))
    params = NodeParams(depth_enabled=True)
    segmenter = Segmenter.from_weights(demo_weights(), device='cpu',
                                       postprocess=params.postprocess())
    options = OutputOptions.from_params(params, instance_mask=False, overlay=False,
                                        markers=True, points=True)
    report = segment_bag(source, folder / 'out', segmenter, image_topic=COLOR, options=options,
                         score_threshold=params.score_threshold, progress=False,
                         depth=BagDepth(DEPTH, INFO, params.depth_options()))
    return scenes, report, read_bag(folder / 'out'), source


def test_every_object_found_in_2d_gets_a_3d_position_within_5_cm_offline(segmented):
    scenes, report, topics, _ = segmented
    assert (report.depth.paired, report.depth.unpaired) == (2, 1)
    instances = [msg for _, msg in topics['/instances'][1]]
    assert [stamp_of(msg) for msg in instances] == [stamp(i) for i in range(3)]
    found = 0
    for rgbd, array in zip(scenes[:2], instances[:2]):
        for shape, centroid in zip(rgbd.scene.instances, rgbd.centroids):
            matches = [i for i in array.instances if i.class_name == CLASS_OF[shape.category_id]]
            if matches:
                found += 1
                position = matches[0].position
                assert np.linalg.norm([position.x - centroid[0], position.y - centroid[1],
                                       position.z - centroid[2]]) < 0.05
    assert found >= 4
    assert all(i.num_points == 0 for i in instances[2].instances)  # no depth within the skew


def test_the_3d_topics_are_written_for_the_frames_with_depth(segmented):
    _, report, topics, _ = segmented
    assert topics['/detections_3d'][0] == 'vision_msgs/msg/Detection3DArray'
    assert topics['/markers'][0] == 'visualization_msgs/msg/MarkerArray'
    assert len(topics['/detections_3d'][1]) == len(topics['/points'][1]) == 2
    instances = [msg for _, msg in topics['/instances'][1]]
    for (_, detections), (_, cloud), array in zip(topics['/detections_3d'][1],
                                                  topics['/points'][1], instances):
        valid = [i for i in array.instances if i.valid_3d]
        assert [d.id for d in detections.detections] == [str(i.id) for i in valid]
        points = np.frombuffer(cloud.data.tobytes(), POINT_DTYPE)
        assert len(points) == sum(i.num_points for i in valid) > 0
    markers = topics['/markers'][1][0][1].markers
    assert markers[0].action == 3 and {m.ns for m in markers[1:]} == {'boxes', 'labels'}


def test_a_missing_depth_topic_names_the_topics_of_the_bag(segmented, tmp_path):
    _, _, _, source = segmented
    with pytest.raises(BagError, match=r"topic '/nope' of type sensor_msgs/msg/Image is not in "
                                       r'the bag; its image and camera_info topics: /cam/color'):
        segment_bag(source, tmp_path / 'out', lambda image: None, image_topic=COLOR,
                    options=OutputOptions(), score_threshold=0.3, progress=False,
                    depth=BagDepth('/nope', INFO))


def test_cli_writes_the_3d_topics(segmented, tmp_path, capsys):
    _, _, _, source = segmented
    code = main(['bag', str(source), str(tmp_path / 'out'), '--image-topic', COLOR,
                 '--depth-topic', DEPTH, '--camera-info-topic', INFO, '--device', 'cpu'])
    assert code == 0
    out = capsys.readouterr()
    assert '/detections_3d 2' in out.out and '2 of 3 frames paired with depth' in out.out
    assert set(read_bag(tmp_path / 'out')) >= {'/detections_3d', '/markers', '/points'}


def stamp_of(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
