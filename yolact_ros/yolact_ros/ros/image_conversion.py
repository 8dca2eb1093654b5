"""sensor_msgs Image / CompressedImage fields to BGR ``uint8[H, W, 3]`` arrays, without cv_bridge.

Pure functions over the message fields, so the node, the bag tool and tests share them. Every
malformed frame raises ``ValueError`` naming the encoding, the size, the step and the data length.

Conversions follow cv_bridge's: 16-bit images are scaled to 8 bits by dropping the low byte,
bayer patterns are demosaiced bilinearly, ``yuv422`` is UYVY byte order (as ROS defines it) and
``yuv422_yuy2`` / ``yuyv`` is YUYV.
"""

import array
from typing import Tuple, Union

import cv2
import numpy as np

Buffer = Union[bytes, bytearray, memoryview, np.ndarray, array.array]

# encoding -> (channels, bytes per channel, OpenCV conversion to BGR or None)
_RAW_ENCODINGS = {
    'bgr8': (3, 1, None),
    'rgb8': (3, 1, cv2.COLOR_RGB2BGR),
    'bgra8': (4, 1, cv2.COLOR_BGRA2BGR),
    'rgba8': (4, 1, cv2.COLOR_RGBA2BGR),
    'mono8': (1, 1, cv2.COLOR_GRAY2BGR),
    '8UC1': (1, 1, cv2.COLOR_GRAY2BGR),
    '8UC3': (3, 1, None),
    'bgr16': (3, 2, None),
    'rgb16': (3, 2, cv2.COLOR_RGB2BGR),
    'bgra16': (4, 2, cv2.COLOR_BGRA2BGR),
    'rgba16': (4, 2, cv2.COLOR_RGBA2BGR),
    'mono16': (1, 2, cv2.COLOR_GRAY2BGR),
    '16UC1': (1, 2, cv2.COLOR_GRAY2BGR),
    # ROS names the pattern by its first row; OpenCV by the second row's 2nd and 3rd pixels.
    'bayer_rggb8': (1, 1, cv2.COLOR_BayerBG2BGR),
    'bayer_bggr8': (1, 1, cv2.COLOR_BayerRG2BGR),
    'bayer_gbrg8': (1, 1, cv2.COLOR_BayerGR2BGR),
    'bayer_grbg8': (1, 1, cv2.COLOR_BayerGB2BGR),
    'bayer_rggb16': (1, 2, cv2.COLOR_BayerBG2BGR),
    'bayer_bggr16': (1, 2, cv2.COLOR_BayerRG2BGR),
    'bayer_gbrg16': (1, 2, cv2.COLOR_BayerGR2BGR),
    'bayer_grbg16': (1, 2, cv2.COLOR_BayerGB2BGR),
    # 4:2:2, two bytes per pixel; ROS's plain 'yuv422' is UYVY.
    'yuv422': (2, 1, cv2.COLOR_YUV2BGR_UYVY),
    'uyvy': (2, 1, cv2.COLOR_YUV2BGR_UYVY),
    'UYVY': (2, 1, cv2.COLOR_YUV2BGR_UYVY),
    'yuv422_yuy2': (2, 1, cv2.COLOR_YUV2BGR_YUY2),
    'yuyv': (2, 1, cv2.COLOR_YUV2BGR_YUY2),
    'YUYV': (2, 1, cv2.COLOR_YUV2BGR_YUY2),
}

SUPPORTED_ENCODINGS: Tuple[str, ...] = tuple(_RAW_ENCODINGS)


def _as_bytes_view(data: Buffer) -> np.ndarray:
    """View any bytes-like message field as a flat ``uint8`` array (no copy where possible)."""
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8)
    return np.frombuffer(memoryview(data).cast('B'), np.uint8)


def image_to_bgr(encoding: str, height: int, width: int, step: int, data: Buffer,
                 is_bigendian: bool = False) -> np.ndarray:
    """Convert the fields of a ``sensor_msgs/Image`` to a new BGR ``uint8[height, width, 3]``.

    Args:
        encoding: one of :data:`SUPPORTED_ENCODINGS`.
        height, width: image size in pixels (both > 0).
        step: bytes per row, at least ``width * bytes per pixel`` (rows may be padded).
        data: ``height * step`` bytes.
        is_bigendian: byte order of 16-bit encodings.

    Raises:
        ValueError: unknown encoding, zero size, a step too small for the width, a data length
            other than ``height * step``, or an odd width for 4:2:2 encodings.
    """
    spec = _RAW_ENCODINGS.get(encoding)
    where = f'{encoding!r} image {width}x{height}, step {step}'
    if spec is None:
        raise ValueError(f'unsupported encoding {encoding!r}; supported: '
                         f'{", ".join(SUPPORTED_ENCODINGS)}')
    channels, depth, code = spec
    if height <= 0 or width <= 0:
        raise ValueError(f'empty {where}')
    if channels == 2 and width % 2:
        raise ValueError(f'{where}: 4:2:2 encodings need an even width')
    row_bytes = width * channels * depth
    if step < row_bytes:
        raise ValueError(f'{where}: step is smaller than width * {channels * depth} bytes '
                         f'= {row_bytes}')
    flat = _as_bytes_view(data)
    if flat.size != height * step:
        raise ValueError(f'{where}: expected height * step = {height * step} bytes of data, '
                         f'got {flat.size}')
    rows = flat.reshape(height, step)[:, :row_bytes]
    if depth == 2:
        dtype = np.dtype('>u2' if is_bigendian else '<u2')
        # Copy into contiguous memory (rows may be padded), then keep the high byte.
        wide = np.ascontiguousarray(rows).view(dtype).reshape(height, width, channels)
        pixels = (wide >> 8).astype(np.uint8)
    else:
        pixels = rows.reshape(height, width, channels)
    if code is None:
        return np.array(pixels, dtype=np.uint8, copy=True, order='C')
    if channels == 1:
        pixels = pixels[:, :, 0]
    return cv2.cvtColor(np.ascontiguousarray(pixels), code)


def compressed_to_bgr(fmt: str, data: Buffer) -> np.ndarray:
    """Decode the fields of a ``sensor_msgs/CompressedImage`` (JPEG, PNG, ...) to BGR ``uint8``.

    ``fmt`` is only used in messages and to reject ``compressedDepth`` payloads; the codec is
    detected from the data. Colour images come out BGR (compressed_image_transport always
    compresses BGR), grey and 16-bit images are expanded to 8-bit BGR.

    Raises:
        ValueError: empty data, a ``compressedDepth`` payload, or data OpenCV cannot decode.
    """
    flat = _as_bytes_view(data)
    if 'compresseddepth' in fmt.lower():
        raise ValueError(f'compressed image format {fmt!r} (depth) is not supported')
    if flat.size == 0:
        raise ValueError(f'compressed image (format {fmt!r}) has no data')
    image = cv2.imdecode(flat, cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise ValueError(f'cannot decode compressed image (format {fmt!r}, {flat.size} bytes)')
    return image


def bgr_to_image_fields(image_bgr: np.ndarray) -> Tuple[int, int, int, bytes]:
    """Return ``(height, width, step, data)`` of a ``bgr8`` ``sensor_msgs/Image`` for an array."""
    if image_bgr.dtype != np.uint8 or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise ValueError(f'expected uint8[H, W, 3], got {image_bgr.dtype}{list(image_bgr.shape)}')
    height, width = image_bgr.shape[:2]
    return height, width, width * 3, np.ascontiguousarray(image_bgr).tobytes()
