"""InstanceMask encodings: hand-checked bytes, and round trips against pycocotools."""

import numpy as np
import pytest

from yolact_ros.ros.mask_encoding import (
    BITMAP_ROI, compress_counts, decode_counts, decode_mask, encode_mask, encode_window, mask_roi,
    RLE_COCO, rle_counts, Roi, to_coco_rle)

mask_util = pytest.importorskip('pycocotools.mask')


def coco_encode(mask: np.ndarray) -> dict:
    return mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))


def random_masks():
    rng = np.random.default_rng(1)
    masks = [np.zeros((5, 7), bool), np.ones((5, 7), bool), np.eye(6, 9, dtype=bool),
             np.zeros((1, 1), bool), np.ones((1, 1), bool)]
    corner = np.zeros((8, 8), bool)
    corner[0, 0] = True  # first pixel set: RLE starts with a 0-length background run
    masks.append(corner)
    ring = np.zeros((30, 40), bool)
    yy, xx = np.mgrid[:30, :40]
    ring[((yy - 15) ** 2 + (xx - 20) ** 2 < 100) & ((yy - 15) ** 2 + (xx - 20) ** 2 > 25)] = True
    masks.append(ring)  # a hole: polygons lose it, these encodings must not
    for shape in [(13, 17), (64, 48), (3, 200)]:
        masks.append(rng.random(shape) < 0.3)
    return masks


def test_bitmap_roi_hand_checked():
    mask = np.zeros((4, 6), bool)
    mask[1, 2:5] = True  # row 1: columns 2..4
    mask[2, 3] = True
    encoded = encode_mask(mask, BITMAP_ROI)
    assert encoded.roi == Roi(x_offset=2, y_offset=1, height=2, width=3)
    # ROI rows concatenated: 111 010 -> 0b11101000 (MSB first, zero padded)
    assert encoded.data == bytes([0b11101000])
    assert encoded.area == 4 and encoded.counts.size == 0


def test_rle_hand_checked_column_major_background_first():
    mask = np.array([[0, 1],
                     [1, 1]], bool)
    # column-major: 0,1 | 1,1 -> runs: 1 background, 3 foreground
    assert rle_counts(mask).tolist() == [1, 3]
    assert rle_counts(~mask).tolist() == [0, 1, 3]


@pytest.mark.parametrize('index', range(len(random_masks())))
def test_rle_counts_equal_pycocotools(index):
    mask = random_masks()[index]
    coco = coco_encode(mask)
    ours = rle_counts(mask)
    # Our counts, compressed, equal pycocotools' string; and pycocotools reads our list form.
    assert compress_counts(ours) == coco['counts']
    rle = {'size': list(mask.shape), 'counts': ours.tolist()}
    np.testing.assert_array_equal(
        mask_util.decode(mask_util.frPyObjects(rle, *mask.shape)).astype(bool), mask)


@pytest.mark.parametrize('encoding', [BITMAP_ROI, RLE_COCO])
@pytest.mark.parametrize('index', range(len(random_masks())))
def test_round_trip_and_to_coco_rle(encoding, index):
    mask = random_masks()[index]
    height, width = mask.shape
    encoded = encode_mask(mask, encoding)
    assert encoded.area == int(mask.sum())
    assert encoded.roi == mask_roi(mask)
    np.testing.assert_array_equal(decode_mask(encoded, height, width), mask)
    rle = to_coco_rle(encoded, height, width)
    assert rle == coco_encode(mask)
    np.testing.assert_array_equal(mask_util.decode(rle).astype(bool), mask)
    assert int(mask_util.area(rle)) == encoded.area
    uncompressed = to_coco_rle(encoded, height, width, compressed=False)
    assert uncompressed['counts'] == rle_counts(mask).tolist()


def test_bitmap_size_is_one_bit_per_roi_pixel():
    mask = np.zeros((480, 640), bool)
    mask[100:200, 300:380] = True
    encoded = encode_mask(mask, BITMAP_ROI)
    assert len(encoded.data) == 100 * 80 // 8


def test_decode_rejects_inconsistent_messages():
    mask = np.zeros((4, 6), bool)
    mask[1, 2:5] = True
    encoded = encode_mask(mask, BITMAP_ROI)
    with pytest.raises(ValueError, match='exceeds the image'):
        decode_mask(encoded, 2, 3)
    short = encoded.__class__(BITMAP_ROI, encoded.roi, b'', encoded.counts, 3)
    with pytest.raises(ValueError, match='needs 1 bytes, got 0'):
        decode_mask(short, 4, 6)
    with pytest.raises(ValueError, match='sum to 5, expected height'):
        decode_counts([2, 3], 4, 6)
    with pytest.raises(ValueError, match='unknown mask encoding 7'):
        decode_mask(encoded.__class__(7, encoded.roi, b'', encoded.counts, 3), 4, 6)
    with pytest.raises(ValueError, match='unknown mask encoding'):
        encode_mask(mask, 5)
    with pytest.raises(ValueError, match=r'expected a mask \[H, W\]'):
        encode_mask(np.zeros((2, 2, 2), bool))


@pytest.mark.parametrize('encoding', [BITMAP_ROI, RLE_COCO])
def test_a_window_encodes_as_its_full_image_mask(encoding):
    rng = np.random.default_rng(3)
    height, width = 20, 30
    # (origin y, x, window h, w): inside, flush with the bottom-right corner, the whole image,
    # a sparse window whose tight box is smaller than it, and an empty 0 x 0 window.
    for top, left, win_h, win_w in [(3, 4, 5, 6), (15, 26, 5, 4), (0, 0, 20, 30),
                                    (2, 2, 12, 12), (0, 0, 0, 0)]:
        window = rng.random((win_h, win_w)) < (0.05 if win_h == 12 else 0.5)
        full = np.zeros((height, width), bool)
        full[top:top + win_h, left:left + win_w] = window
        ours = encode_window(window, (top, left), (height, width), encoding)
        reference = encode_mask(full, encoding)
        assert (ours.roi, ours.data, ours.area) == (reference.roi, reference.data, reference.area)
        np.testing.assert_array_equal(ours.counts, reference.counts)
        np.testing.assert_array_equal(decode_mask(ours, height, width), full)
