"""Compact encodings of binary instance masks for ``yolact_ros_msgs/InstanceMask``.

``BITMAP_ROI``: one bit per pixel over the mask's tight box, the box's rows concatenated and packed
most significant bit first (``numpy.packbits``). ``RLE_COCO``: uncompressed COCO run lengths over
the whole image, column-major, first run background (pycocotools' uncompressed RLE).

The decoders accept anything shaped like the message (an rclpy or rosbags ``InstanceMask``, or an
:class:`EncodedMask`): attributes ``encoding``, ``roi.{x_offset, y_offset, height, width}``,
``data`` and ``counts``. No pycocotools needed; the results equal pycocotools'.
"""

from dataclasses import dataclass
from typing import Dict, List, NamedTuple, Sequence, Tuple, Union

import numpy as np

# Equal to the constants of yolact_ros_msgs/InstanceMask.
BITMAP_ROI = 0
RLE_COCO = 1

ENCODINGS: Dict[str, int] = {'bitmap_roi': BITMAP_ROI, 'rle_coco': RLE_COCO}


class Roi(NamedTuple):
    """A ``sensor_msgs/RegionOfInterest`` without ``do_rectify``: the tight box of a mask."""

    x_offset: int
    y_offset: int
    height: int
    width: int


@dataclass(frozen=True)
class EncodedMask:
    """The fields of an ``InstanceMask`` message as plain values."""

    encoding: int
    roi: Roi
    data: bytes
    counts: np.ndarray  # uint32[R]
    area: int


def mask_roi(mask: np.ndarray) -> Roi:
    """Return the tight box around the set pixels of ``bool[H, W]`` (all zeros when empty)."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return Roi(0, 0, 0, 0)
    # Only the band of occupied rows can hold set columns: a small mask costs a small scan.
    cols = np.flatnonzero(mask[rows[0]:rows[-1] + 1].any(axis=0))
    return Roi(int(cols[0]), int(rows[0]), int(rows[-1] - rows[0] + 1),
               int(cols[-1] - cols[0] + 1))


def _check_mask(mask: np.ndarray) -> np.ndarray:
    if mask.ndim != 2:
        raise ValueError(f'expected a mask [H, W], got shape {list(mask.shape)}')
    return mask.astype(bool, copy=False)


def rle_counts(mask: np.ndarray) -> np.ndarray:
    """Return COCO's uncompressed run lengths ``uint32[R]`` of ``bool[H, W]``.

    Runs go down the columns (column-major) and alternate background / foreground, starting with
    background (a leading 0 when the first pixel is set).
    """
    flat = _check_mask(mask).ravel(order='F')
    if flat.size == 0:
        return np.zeros((0,), np.uint32)
    # Indices where the value changes, plus both ends: run lengths are their differences.
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate(([0], changes, [flat.size]))
    counts = np.diff(edges)
    if flat[0]:
        counts = np.concatenate(([0], counts))
    return counts.astype(np.uint32)


def encode_mask(mask: np.ndarray, encoding: int = BITMAP_ROI) -> EncodedMask:
    """Encode ``bool[H, W]`` with ``BITMAP_ROI`` or ``RLE_COCO``."""
    mask = _check_mask(mask)
    return encode_window(mask, (0, 0), mask.shape, encoding)


def encode_window(window: np.ndarray, origin: Tuple[int, int], image_size: Tuple[int, int],
                  encoding: int = BITMAP_ROI) -> EncodedMask:
    """Encode the mask that is ``bool[h, w]`` ``window`` at ``origin`` (y, x) of the image.

    ``BITMAP_ROI`` looks at the window only (its tight box is the mask's); ``RLE_COCO`` runs
    over the whole ``image_size`` (H, W) image.
    """
    window = _check_mask(window)
    if encoding not in (BITMAP_ROI, RLE_COCO):
        raise ValueError(f'unknown mask encoding {encoding!r}; expected {BITMAP_ROI} '
                         f'(BITMAP_ROI) or {RLE_COCO} (RLE_COCO)')
    top, left = (int(v) for v in origin)
    local = mask_roi(window)
    roi = Roi(local.x_offset + left, local.y_offset + top, local.height, local.width) \
        if local.height else local
    box = window[local.y_offset:local.y_offset + local.height,
                 local.x_offset:local.x_offset + local.width]
    area = int(np.count_nonzero(box))  # every set pixel lies in the tight box
    if encoding == BITMAP_ROI:
        data = np.packbits(box, axis=None).tobytes() if area else b''
        return EncodedMask(BITMAP_ROI, roi, data, np.zeros((0,), np.uint32), area)
    if window.shape == tuple(image_size):
        mask = window
    else:
        mask = np.zeros(image_size, bool)
        mask[top:top + window.shape[0], left:left + window.shape[1]] = window
    return EncodedMask(RLE_COCO, roi, b'', rle_counts(mask), area)


def _bytes(data) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8)
    return np.frombuffer(memoryview(data).cast('B'), np.uint8)


def decode_counts(counts: Sequence[int], height: int, width: int) -> np.ndarray:
    """Decode COCO uncompressed run lengths to ``bool[height, width]``."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total != height * width:
        raise ValueError(f'RLE counts sum to {total}, expected height * width = '
                         f'{height} * {width} = {height * width}')
    values = np.zeros(counts.size, bool)
    values[1::2] = True
    flat = np.repeat(values, counts)
    return flat.reshape(width, height).T


def decode_mask(mask_msg, height: int, width: int) -> np.ndarray:
    """Decode an ``InstanceMask`` (message or :class:`EncodedMask`) to ``bool[height, width]``.

    ``height`` and ``width`` are the image's (``InstanceArray.height`` / ``.width``).
    """
    encoding = int(mask_msg.encoding)
    roi = mask_msg.roi
    if encoding == RLE_COCO:
        return decode_counts(mask_msg.counts, height, width)
    if encoding != BITMAP_ROI:
        raise ValueError(f'unknown mask encoding {encoding}')
    out = np.zeros((height, width), bool)
    rh, rw, x0, y0 = int(roi.height), int(roi.width), int(roi.x_offset), int(roi.y_offset)
    if rh == 0 or rw == 0:
        return out
    if x0 + rw > width or y0 + rh > height:
        raise ValueError(f'mask roi x={x0} y={y0} {rw}x{rh} exceeds the image {width}x{height}')
    packed = _bytes(mask_msg.data)
    needed = (rh * rw + 7) // 8
    if packed.size != needed:
        raise ValueError(f'BITMAP_ROI {rw}x{rh} needs {needed} bytes, got {packed.size}')
    bits = np.unpackbits(packed, count=rh * rw).astype(bool)
    out[y0:y0 + rh, x0:x0 + rw] = bits.reshape(rh, rw)
    return out


def compress_counts(counts: Sequence[int]) -> bytes:
    """Return COCO's compressed string form of run lengths (as ``pycocotools.mask.encode``).

    Port of ``rleToString`` in the COCO API's ``maskApi.c``: each count, minus the count two
    before it from the fourth on, in 5-bit groups with a continuation bit, offset by 48.
    """
    out = bytearray()
    counts = [int(c) for c in counts]
    for i, count in enumerate(counts):
        value = count - counts[i - 2] if i > 2 else count
        more = True
        while more:
            chunk = value & 0x1f
            value >>= 5  # arithmetic shift, as C's on a signed long
            more = value != -1 if chunk & 0x10 else value != 0
            if more:
                chunk |= 0x20
            out.append(chunk + 48)
    return bytes(out)


def to_coco_rle(mask_msg, height: int, width: int,
                compressed: bool = True) -> Dict[str, Union[List[int], bytes]]:
    """Return an ``InstanceMask`` as a COCO RLE dict ``{'size': [h, w], 'counts': ...}``.

    ``compressed=True`` gives what ``pycocotools.mask.encode`` returns (``counts`` bytes, ready for
    ``pycocotools.mask.decode`` / ``area`` / ``iou`` and COCO result files after ``.decode()``);
    ``False`` gives the uncompressed list form.
    """
    if int(mask_msg.encoding) == RLE_COCO:
        counts = np.asarray(mask_msg.counts, dtype=np.int64)
    else:
        counts = rle_counts(decode_mask(mask_msg, height, width))
    counts_out = compress_counts(counts) if compressed else [int(c) for c in counts]
    return {'size': [int(height), int(width)], 'counts': counts_out}
