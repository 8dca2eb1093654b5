"""Several cameras, one model: names, the batch of newest frames, one model call (no rclpy)."""

import threading
import time

import numpy as np
import pytest
from ros_harness import FakeSegmenter, synthetic_scene
from test_frame_pipeline import image_msg, TYPES

from yolact_ros.ros.cameras import camera_topic, check_cameras, FrameBatcher
from yolact_ros.ros.frame_pipeline import (
    BadFrameError, InferenceError, OutputOptions, process_frame, segment_frames)
from yolact_ros.ros.frame_slot import FrameSlot


class BatchFake(FakeSegmenter):
    """A FakeSegmenter that also takes a list of images, recording each call's batch size."""

    def __init__(self) -> None:
        super().__init__()
        self.batches = []

    def __call__(self, images):
        if isinstance(images, np.ndarray):
            self.batches.append(1)
            return super().__call__(images)
        self.batches.append(len(images))
        return [super(BatchFake, self).__call__(image) for image in images]


def test_camera_topics_and_names():
    assert camera_topic('', 'image') == 'image'
    assert camera_topic('robot/front', 'instances') == 'robot/front/instances'
    assert check_cameras([]) is None and check_cameras(['front', 'robot/rear_2']) is None
    assert 'relative ROS name' in check_cameras(['front', '/rear'])
    assert 'relative ROS name' in check_cameras(['front/'])
    assert "'a' given more than once" == check_cameras(['a', 'b', 'a'])


def test_batcher_takes_the_newest_frame_of_every_camera_with_one():
    batcher = FrameBatcher([FrameSlot() for _ in range(3)])
    for frame in range(3):
        batcher.put(0, ('front', frame))
    batcher.put(2, ('rear', 0))
    assert batcher.take(timeout=1.0) == [(0, ('front', 2), 2), (2, ('rear', 0), 0)]
    assert batcher.take(timeout=0.05) == []  # nothing pending: times out empty
    assert [slot.dropped for slot in batcher.slots] == [2, 0, 0]


def test_a_camera_that_stops_does_not_hold_the_others_up():
    batcher = FrameBatcher([FrameSlot(), FrameSlot()])
    batcher.put(0, 'a0')
    batcher.put(1, 'b0')
    assert [index for index, _, _ in batcher.take(timeout=1.0)] == [0, 1]
    for frame in range(1, 4):  # camera 1 went silent
        batcher.put(0, f'a{frame}')
        start = time.monotonic()
        assert batcher.take(timeout=5.0) == [(0, f'a{frame}', 0)]
        assert time.monotonic() - start < 1.0


def test_a_put_wakes_a_waiting_take_and_close_ends_it():
    batcher = FrameBatcher([FrameSlot(), FrameSlot()])
    taken = []
    worker = threading.Thread(target=lambda: taken.append(batcher.take(timeout=10.0)))
    worker.start()
    time.sleep(0.05)
    batcher.put(1, 'frame')
    worker.join(timeout=5.0)
    assert taken == [[(1, 'frame', 0)]]
    batcher.put(0, 'pending')
    batcher.close()
    start = time.monotonic()
    assert batcher.take(timeout=10.0) == [] and batcher.take(timeout=10.0) == []
    assert time.monotonic() - start < 1.0
    assert batcher.slots[0].dropped == 1  # the pending frame counts as dropped


def test_segment_frames_runs_one_batch_of_mixed_sizes():
    segmenter = BatchFake()
    small = np.zeros((6, 8, 3), np.uint8)
    wide = np.zeros((10, 30, 3), np.uint8)
    msgs = [image_msg('bgr8', small, frame_id='front'), image_msg('bgr8', wide, frame_id='rear')]
    front, rear = segment_frames(msgs, segmenter)
    assert segmenter.batches == [2]
    assert front.image.shape == (6, 8, 3) and rear.image.shape == (10, 30, 3)
    assert front.detections.image_size == (6, 8) and rear.detections.image_size == (10, 30)
    assert front.decode_ms >= 0 and rear.start >= front.start
    (single,) = segment_frames(msgs[:1], segmenter)
    assert segmenter.batches == [2, 1]  # one image is passed as one array
    assert single.detections.image_size == (6, 8)


def test_a_bad_frame_stays_out_of_the_batch_and_a_model_failure_reaches_every_frame():
    segmenter = BatchFake()
    good = image_msg('bgr8', np.zeros((6, 8, 3), np.uint8))
    bad = image_msg('rgb8', np.zeros((6, 8, 3), np.uint8), step=10)
    results = segment_frames([good, bad, good], segmenter)
    assert segmenter.batches == [2]
    assert isinstance(results[1], BadFrameError) and 'step' in str(results[1])
    assert results[0].detections.image_size == results[2].detections.image_size == (6, 8)
    segmenter.fail_next = RuntimeError('CUDA out of memory')
    first, second = segment_frames([good, good], segmenter)
    assert isinstance(first, InferenceError) and second is first
    assert str(first.__cause__) == 'CUDA out of memory'
    assert segment_frames([bad], segmenter)[0].__class__ is BadFrameError


def test_process_frame_with_a_segmented_frame_does_not_call_the_segmenter():
    msg = image_msg('bgr8', np.zeros((6, 8, 3), np.uint8), frame_id='front')
    (segmented,) = segment_frames([msg], FakeSegmenter())
    unused = FakeSegmenter()
    result = process_frame(msg, unused, TYPES, OutputOptions(instance_mask=True),
                           segmented=segmented)
    direct = process_frame(msg, FakeSegmenter(), TYPES, OutputOptions(instance_mask=True))
    assert unused.calls == 0
    assert list(result.messages) == list(direct.messages)
    assert result.messages['instances'].header is msg.header
    assert result.times.decode_ms == segmented.decode_ms
    np.testing.assert_array_equal(result.detections.boxes, direct.detections.boxes)


@pytest.fixture(scope='module')
def demo_segmenter():
    from yolact_ros.inference import Segmenter
    from yolact_ros.weights import demo_weights

    return Segmenter.from_weights(demo_weights(), device='cpu')


def test_the_real_model_gives_each_image_of_a_mixed_batch_its_own_detections(demo_segmenter):
    # 256x256 and 320x240 (the top half's two shapes): another size and aspect ratio
    scenes = [synthetic_scene(4).image, synthetic_scene(5, count=2, size=320).image[:240]]
    msgs = [image_msg('bgr8', pixels) for pixels in scenes]
    batched = [frame.detections for frame in segment_frames(msgs, demo_segmenter)]
    alone = [demo_segmenter(pixels) for pixels in scenes]
    for together, single, pixels in zip(batched, alone, scenes):
        assert together.image_size == pixels.shape[:2]
        assert len(together) == len(single) > 0
        assert together.class_names == single.class_names
        np.testing.assert_allclose(together.boxes, single.boxes, atol=0.5)
        np.testing.assert_allclose(together.scores, single.scores, atol=1e-3)
