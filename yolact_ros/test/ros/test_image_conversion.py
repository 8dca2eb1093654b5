"""Image / CompressedImage fields to BGR: every encoding, padded rows, byte order, bad frames."""

import cv2
import numpy as np
import pytest

from yolact_ros.ros.image_conversion import (
    bgr_to_image_fields, compressed_to_bgr, image_to_bgr, SUPPORTED_ENCODINGS)

# A 6x8 BGR test image with distinct, smooth colours (bayer demosaicing needs smoothness).
HEIGHT, WIDTH = 6, 8
BGR = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
BGR[..., 0], BGR[..., 1], BGR[..., 2] = 40, 120, 200


def _pattern_image() -> np.ndarray:
    """Return a non-uniform image for the exact encodings (catches swapped channels)."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8)


def _mosaic(bgr: np.ndarray, pattern: str) -> np.ndarray:
    """Sample ``bgr`` through a 2x2 colour filter ``pattern`` (e.g. 'RGGB', first row first)."""
    channel = {'R': 2, 'G': 1, 'B': 0}
    out = np.zeros(bgr.shape[:2], bgr.dtype)
    for (dy, dx), letter in zip([(0, 0), (0, 1), (1, 0), (1, 1)], pattern):
        out[dy::2, dx::2] = bgr[dy::2, dx::2, channel[letter]]
    return out


def encode(encoding: str, bgr: np.ndarray, big_endian: bool = False):
    """Return ``(step, data)`` of ``bgr`` in ``encoding`` (the inverse the node must undo)."""
    wide = bgr.astype(np.uint16) * 257  # 8 -> 16 bit, high byte = the 8-bit value
    order = '>u2' if big_endian else '<u2'
    if encoding in ('bgr8', '8UC3'):
        pixels = bgr
    elif encoding == 'rgb8':
        pixels = bgr[..., ::-1]
    elif encoding == 'bgra8':
        pixels = np.dstack([bgr, np.full(bgr.shape[:2], 255, np.uint8)])
    elif encoding == 'rgba8':
        pixels = np.dstack([bgr[..., ::-1], np.full(bgr.shape[:2], 7, np.uint8)])
    elif encoding in ('mono8', '8UC1'):
        pixels = bgr[..., 1]
    elif encoding == 'bgr16':
        pixels = wide.astype(order)
    elif encoding == 'rgb16':
        pixels = wide[..., ::-1].astype(order)
    elif encoding == 'bgra16':
        pixels = np.dstack([wide, np.full(bgr.shape[:2], 65535, np.uint16)]).astype(order)
    elif encoding == 'rgba16':
        pixels = np.dstack([wide[..., ::-1], np.zeros(bgr.shape[:2], np.uint16)]).astype(order)
    elif encoding in ('mono16', '16UC1'):
        pixels = wide[..., 1].astype(order)
    elif encoding.startswith('bayer_'):
        pattern = encoding[6:10].upper()
        source = wide.astype(order) if encoding.endswith('16') else bgr
        pixels = _mosaic(source, pattern)
    else:
        raise AssertionError(encoding)
    pixels = np.ascontiguousarray(pixels)
    row = pixels.reshape(pixels.shape[0], -1).view(np.uint8)
    return row.shape[1], row.tobytes()


def expected(encoding: str, bgr: np.ndarray) -> np.ndarray:
    if encoding in ('mono8', '8UC1', 'mono16', '16UC1'):
        return np.repeat(bgr[..., 1:2], 3, axis=2)
    return bgr


EXACT = [e for e in SUPPORTED_ENCODINGS if not e.startswith(('bayer_', 'yuv', 'uyvy', 'UYVY',
                                                             'yuyv', 'YUYV'))]
BAYER = [e for e in SUPPORTED_ENCODINGS if e.startswith('bayer_')]


@pytest.mark.parametrize('encoding', EXACT)
def test_exact_encodings_give_the_bgr_image(encoding):
    image = _pattern_image()
    step, data = encode(encoding, image)
    out = image_to_bgr(encoding, HEIGHT, WIDTH, step, data)
    assert out.dtype == np.uint8 and out.shape == (HEIGHT, WIDTH, 3)
    np.testing.assert_array_equal(out, expected(encoding, image))


@pytest.mark.parametrize('encoding', ['mono16', 'rgb16', 'bgra16'])
def test_sixteen_bit_big_endian(encoding):
    image = _pattern_image()
    step, data = encode(encoding, image, big_endian=True)
    out = image_to_bgr(encoding, HEIGHT, WIDTH, step, data, is_bigendian=True)
    np.testing.assert_array_equal(out, expected(encoding, image))


@pytest.mark.parametrize('encoding', BAYER)
def test_bayer_patterns_demosaic_to_the_right_colours(encoding):
    step, data = encode(encoding, BGR)
    out = image_to_bgr(encoding, HEIGHT, WIDTH, step, data)
    # Interior pixels of a uniform image demosaic exactly (borders are extrapolated).
    interior = out[2:-2, 2:-2].astype(int)
    assert np.abs(interior - BGR[2:-2, 2:-2]).max() <= 2, out[2:-2, 2:-2, :].tolist()


@pytest.mark.parametrize('encoding,order', [('yuv422', 'UYVY'), ('uyvy', 'UYVY'),
                                            ('UYVY', 'UYVY'), ('yuv422_yuy2', 'YUYV'),
                                            ('yuyv', 'YUYV'), ('YUYV', 'YUYV')])
def test_yuv422_byte_orders(encoding, order):
    # Neutral chroma (U = V = 128): even pixels dark (Y=50), odd pixels bright (Y=200).
    luma = np.tile(np.array([50, 200], np.uint8), (HEIGHT, WIDTH // 2))
    chroma = np.full((HEIGHT, WIDTH // 2), 128, np.uint8)
    y0, y1 = luma[:, 0::2], luma[:, 1::2]
    if order == 'UYVY':
        packed = np.stack([chroma, y0, chroma, y1], axis=2)
    else:
        packed = np.stack([y0, chroma, y1, chroma], axis=2)
    out = image_to_bgr(encoding, HEIGHT, WIDTH, WIDTH * 2, packed.tobytes()).astype(int)
    assert np.abs(out - out[..., :1]).max() <= 1  # grey: no chroma read from luma bytes
    assert (out[:, 0::2, 1] < 70).all() and (out[:, 1::2, 1] > 180).all()


def test_padded_rows_are_cropped():
    image = _pattern_image()
    step, data = encode('rgb8', image)
    padded = np.zeros((HEIGHT, step + 5), np.uint8)
    padded[:, :step] = np.frombuffer(data, np.uint8).reshape(HEIGHT, step)
    out = image_to_bgr('rgb8', HEIGHT, WIDTH, step + 5, padded.tobytes())
    np.testing.assert_array_equal(out, image)


def test_accepts_array_and_ndarray_buffers_and_copies():
    import array

    image = _pattern_image()
    step, data = encode('bgr8', image)
    buffer = np.frombuffer(data, np.uint8).copy()
    out = image_to_bgr('bgr8', HEIGHT, WIDTH, step, buffer)
    buffer[:] = 0  # the result must not alias the message buffer
    np.testing.assert_array_equal(out, image)
    np.testing.assert_array_equal(
        image_to_bgr('bgr8', HEIGHT, WIDTH, step, array.array('B', data)), image)


@pytest.mark.parametrize('fields,message', [
    (('jpeg', 6, 8, 24, bytes(144)), "unsupported encoding 'jpeg'"),
    (('rgb8', 6, 8, 24, bytes(143)), 'expected height * step = 144 bytes of data, got 143'),
    (('rgb8', 6, 8, 24, bytes(150)), 'got 150'),
    (('rgb8', 6, 8, 20, bytes(120)), 'step is smaller than width * 3 bytes = 24'),
    (('rgb8', 0, 8, 24, b''), "empty 'rgb8' image 8x0"),
    (('mono8', 6, 0, 0, b''), 'empty'),
    (('yuv422', 6, 7, 14, bytes(84)), 'even width'),
])
def test_bad_frames_raise_value_error_naming_the_problem(fields, message):
    encoding, height, width, step, data = fields
    with pytest.raises(ValueError, match=message.replace('*', r'\*').replace('(', r'\(')):
        image_to_bgr(encoding, height, width, step, data)


def test_error_names_encoding_size_and_step():
    with pytest.raises(ValueError) as info:
        image_to_bgr('bgr8', 6, 8, 24, bytes(10))
    assert "'bgr8' image 8x6, step 24" in str(info.value)


@pytest.mark.parametrize('ext', ['.jpg', '.png'])
def test_compressed_images_decode_to_bgr(ext):
    image = np.zeros((32, 48, 3), np.uint8)
    image[:, :24] = (255, 0, 0)  # blue left half
    image[:, 24:] = (0, 0, 255)  # red right half
    ok, encoded = cv2.imencode(ext, image)
    assert ok
    out = compressed_to_bgr('bgr8; jpeg compressed bgr8' if ext == '.jpg' else 'png',
                            encoded.tobytes())
    assert out.shape == (32, 48, 3)
    assert np.abs(out[4:-4, 4:20].astype(int) - (255, 0, 0)).max() < 20
    assert np.abs(out[4:-4, 28:-4].astype(int) - (0, 0, 255)).max() < 20


def test_compressed_grey_png_expands_to_three_channels():
    ok, encoded = cv2.imencode('.png', np.full((4, 5), 77, np.uint8))
    out = compressed_to_bgr('png', encoded.tobytes())
    assert out.shape == (4, 5, 3) and (out == 77).all()


@pytest.mark.parametrize('fmt,data,message', [
    ('jpeg', b'', 'has no data'),
    ('jpeg', b'\xff\xd8\xff\xe0 not really a jpeg',
     r'cannot decode compressed image \(format .jpeg., 22 bytes\)'),
    ('16UC1; compressedDepth', b'\x00' * 40, 'not supported'),
])
def test_bad_compressed_frames_raise(fmt, data, message):
    with pytest.raises(ValueError, match=message):
        compressed_to_bgr(fmt, data)


def test_bgr_to_image_fields_round_trip():
    image = _pattern_image()
    height, width, step, data = bgr_to_image_fields(image)
    np.testing.assert_array_equal(image_to_bgr('bgr8', height, width, step, data), image)
    with pytest.raises(ValueError, match='expected uint8'):
        bgr_to_image_fields(image.astype(np.float32))
