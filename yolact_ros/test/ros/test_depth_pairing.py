"""Pairing colour and depth frames by stamp; depth and camera_info decoding (no rclpy)."""

from dataclasses import dataclass, field
import threading
import time
from typing import List

import numpy as np
import pytest

from yolact_ros.ros.depth_pairing import (
    camera_info_to_intrinsics, closest, depth_to_array, DepthBuffer, StreamPairing)

MS = 1_000_000


def test_closest_takes_the_nearest_stamp_within_the_skew_earlier_on_a_tie():
    stamps, items = [0, 10 * MS, 20 * MS], ['a', 'b', 'c']
    assert closest(stamps, items, 12 * MS, 5 * MS) == 'b'
    assert closest(stamps, items, 15 * MS, 5 * MS) == 'b'  # tie: the earlier
    assert closest(stamps, items, 19 * MS, 5 * MS) == 'c'
    assert closest(stamps, items, 26 * MS, 5 * MS) is None  # 6 ms from the nearest
    assert closest(stamps, items, -5 * MS, 5 * MS) == 'a'
    assert closest([], [], 0, 5 * MS) is None


def test_buffer_keeps_the_newest_frames_and_restarts_when_stamps_go_back():
    buffer = DepthBuffer(capacity=3)
    for k in range(5):
        buffer.add(k * 10 * MS, k)
    assert buffer.pair(0, 5 * MS) is None  # dropped: only 20, 30, 40 ms are kept
    assert buffer.pair(31 * MS, 5 * MS) == 3
    buffer.add(5 * MS, 'replay')  # a bag played again
    assert buffer.pair(40 * MS, 5 * MS) is None and buffer.pair(5 * MS, 0) == 'replay'
    assert buffer.received == 6
    with pytest.raises(ValueError, match='capacity >= 1, got 0'):
        DepthBuffer(capacity=0)


def test_pair_waits_for_a_depth_frame_still_on_its_way():
    buffer = DepthBuffer()
    buffer.add(0, 'early')  # 40 ms before the colour frame: out of a 30 ms skew
    timer = threading.Timer(0.05, buffer.add, (41 * MS, 'late'))
    timer.start()
    start = time.monotonic()
    assert buffer.pair(40 * MS, 30 * MS, wait_s=2.0) == 'late'
    assert time.monotonic() - start < 1.0  # woken by the frame, not the timeout
    timer.join()


def test_pair_never_waits_without_any_depth_and_gives_up_after_wait_s():
    buffer = DepthBuffer()
    start = time.monotonic()
    assert buffer.pair(0, 30 * MS, wait_s=5.0) is None
    assert time.monotonic() - start < 0.1  # no depth at all: the 2D frame does not wait
    buffer.add(0, 'old')
    start = time.monotonic()
    assert buffer.pair(100 * MS, 30 * MS, wait_s=0.05) is None
    assert 0.04 <= time.monotonic() - start < 1.0


@dataclass
class DepthMsg:
    encoding: str
    height: int
    width: int
    step: int
    data: bytes
    is_bigendian: int = 0


def test_depth_to_array_reads_millimetres_metres_padding_and_byte_order():
    mm = np.array([[0, 1000, 65535], [1, 2, 3]], np.uint16)
    padded = np.zeros((2, 8), np.uint8)
    padded[:, :6] = mm.view(np.uint8)
    out = depth_to_array(DepthMsg('16UC1', 2, 3, 8, padded.tobytes()))
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, mm)
    big = depth_to_array(DepthMsg('mono16', 2, 3, 6, mm.astype('>u2').tobytes(), 1))
    np.testing.assert_array_equal(big, mm)
    metres = np.array([[0.5, np.nan]], np.float32)
    out = depth_to_array(DepthMsg('32FC1', 1, 2, 8, metres.tobytes()))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, metres)
    with pytest.raises(ValueError, match="depth encoding 'rgb8' is not one of 16UC1"):
        depth_to_array(DepthMsg('rgb8', 1, 1, 3, b'abc'))
    with pytest.raises(ValueError, match='step 4 and 4 bytes do not fit'):
        depth_to_array(DepthMsg('16UC1', 2, 2, 4, b'\0' * 4))


@dataclass
class InfoMsg:
    width: int = 640
    height: int = 480
    k: List[float] = field(default_factory=lambda: [500.0, 0, 319.5, 0, 510.0, 239.5, 0, 0, 1])


def test_camera_info_gives_the_intrinsics_and_refuses_an_uncalibrated_camera():
    intrinsics = camera_info_to_intrinsics(InfoMsg())
    assert (intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy) == (
        500.0, 510.0, 319.5, 239.5)
    assert intrinsics.size == (480, 640)
    with pytest.raises(ValueError, match='fx, fy > 0'):
        camera_info_to_intrinsics(InfoMsg(k=[0.0] * 9))


def test_stream_pairing_releases_a_colour_frame_once_depth_has_passed_its_stamp():
    pairing = StreamPairing(5 * MS, window=3)
    assert pairing.add_depth(0, 'd0') == []
    assert pairing.add_colour(10 * MS, 'c10') == []  # a closer depth may still come
    assert pairing.add_colour(20 * MS, 'c20') == []
    assert pairing.add_depth(12 * MS, 'd12') == [('c10', 'd12')]
    assert pairing.add_depth(30 * MS, 'd30') == [('c20', None)]  # 8 and 10 ms away
    assert pairing.add_colour(29 * MS, 'c29') == [('c29', 'd30')]
    assert pairing.add_colour(40 * MS, 'c40') == [] and pairing.finish() == [('c40', None)]


def test_stream_pairing_takes_depth_read_out_of_order_and_stops_waiting_at_the_window():
    pairing = StreamPairing(5 * MS, window=2)
    assert pairing.add_colour(10 * MS, 'a') == [] and pairing.add_colour(20 * MS, 'b') == []
    assert pairing.add_colour(30 * MS, 'c') == [('a', None)]  # no depth at all: window full
    pairing.add_depth(21 * MS, 'd21')
    assert pairing.add_depth(19 * MS, 'd19') == []  # older than the newest: kept in order
    assert pairing.finish() == [('c', None)]
    pairing = StreamPairing(5 * MS)
    pairing.add_depth(19 * MS, 'd19')
    assert pairing.add_colour(20 * MS, 'x') == [] and pairing.add_depth(21 * MS, 'd21') == [
        ('x', 'd19')]  # tie: the earlier
    with pytest.raises(ValueError, match='window >= 1, got 0'):
        StreamPairing(0, window=0)
