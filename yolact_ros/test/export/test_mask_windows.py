"""Masks built over their windows with roi_align equal the full-image upsampling."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

from yolact_ros.config import PostprocessConfig
from yolact_ros.ops import assemble_masks
from yolact_ros.postprocess import mask_windows, paste_masks, Postprocessor, to_windowed_masks

# Boxes (relative x1, y1, x2, y2) in the middle, at every border and corner, and the whole image.
BOXES = torch.tensor([
    [0.30, 0.40, 0.55, 0.70], [0.00, 0.00, 0.20, 0.30], [0.85, 0.80, 1.00, 1.00],
    [0.00, 0.50, 0.10, 1.00], [0.60, 0.00, 1.00, 0.05], [0.00, 0.00, 1.00, 1.00],
    [0.97, 0.10, 1.00, 0.15], [0.49, 0.49, 0.51, 0.51]])


def soft_masks(seed=0, proto=(20, 24)):
    generator = torch.Generator().manual_seed(seed)
    prototypes = torch.rand(*proto, 6, generator=generator)
    coefficients = torch.randn(len(BOXES), 6, generator=generator) * 3
    return assemble_masks(prototypes, coefficients, BOXES)  # (D, Hp, Wp)


def full_upsample(soft, size):
    return F.interpolate(soft[None], size=size, mode='bilinear', align_corners=False)[0]


@pytest.mark.parametrize('size', [(48, 64), (45, 71), (20, 24), (13, 9), (480, 640)])
def test_windows_give_the_full_upsampling_masks(size):
    soft = soft_masks()
    reference = full_upsample(soft, size)
    windows = mask_windows(soft, size, 0.5)
    ours = paste_masks(windows, len(BOXES), size)
    assert ours.shape == reference.shape
    differ = ours != (reference > 0.5)
    # Identical but for pixels within float rounding of the threshold (none in practice).
    assert differ.sum() == 0 or (reference[differ] - 0.5).abs().max() < 1e-5
    if size[0] >= 20:  # non-trivial masks, border boxes included
        assert ours.any(dim=(1, 2)).sum() >= 6
    covered = sum(group.masks[0].numel() * len(group.indices) for group in windows)
    if size == (480, 640):
        assert covered < 0.6 * reference.numel()  # the point: less work than the full image


@pytest.mark.parametrize('size', [(45, 71), (13, 9)])
def test_roi_align_samples_where_interpolate_does_including_borders(size):
    soft = soft_masks(1)
    height, width = size
    proto_h, proto_w = soft.shape[1:]
    reference = full_upsample(soft, size)
    # Windows flush with each border and corner, in source pixels (batch index, x1, y1, x2, y2).
    for y0, x0, h, w in [(0, 0, 5, 7), (height - 5, width - 4, 5, 4), (2, 0, height - 2, 3),
                         (0, width - 3, height, 3), (0, 0, height, width)]:
        box = torch.tensor([[0.0, x0 * proto_w / width, y0 * proto_h / height,
                             (x0 + w) * proto_w / width, (y0 + h) * proto_h / height]])
        window = roi_align(soft[:1, None], box, output_size=(h, w), spatial_scale=1.0,
                           sampling_ratio=1, aligned=True)[0, 0]
        torch.testing.assert_close(window, reference[0, y0:y0 + h, x0:x0 + w],
                                   atol=1e-6, rtol=0)


def test_empty_masks_get_no_window():
    soft = torch.zeros(3, 10, 10)
    soft[1, 4:6, 4:6] = 0.9
    windows = mask_windows(soft, (40, 40), 0.5)
    assert [group.indices.tolist() for group in windows] == [[1]]
    masks = paste_masks(windows, 3, (40, 40))
    assert not masks[0].any() and not masks[2].any()
    # Output row y samples source row (y + 0.5) / 4 - 0.5: rows 16 and 23 sample 3.625 and
    # 5.375, giving 0.9 * 0.625 = 0.5625 > 0.5; rows 15 and 24 give 0.9 * 0.375 = 0.3375.
    assert masks[1].nonzero()[:, 0].unique().tolist() == list(range(16, 24))


def test_postprocessor_masks_equal_the_full_upsampling_path():
    generator = torch.Generator().manual_seed(2)
    num_priors, num_classes, num_protos = 300, 4, 6
    outputs = {
        'loc': torch.randn(1, num_priors, 4, generator=generator) * 0.5,
        'conf': torch.randn(1, num_priors, num_classes + 1, generator=generator) * 2,
        'mask_coef': torch.randn(1, num_priors, num_protos, generator=generator).tanh(),
        'proto': torch.rand(1, 32, 32, num_protos, generator=generator),
        'priors': torch.rand(num_priors, 4, generator=generator) * 0.5 + 0.25,
    }
    config = PostprocessConfig(score_threshold=0.2)
    ours = Postprocessor(config)(outputs, [(90, 120)])[0]
    reference = Postprocessor(config, full_upsample=True)(outputs, [(90, 120)])[0]
    ours_masks = paste_masks(ours['mask_windows'], len(ours['scores']), (90, 120))
    reference_masks = paste_masks(reference['mask_windows'], len(reference['scores']), (90, 120))
    assert len(ours_masks) > 10
    assert torch.equal(ours_masks, reference_masks)
    assert torch.equal(ours['boxes'], reference['boxes'])


def test_host_windows_hold_the_same_masks_in_less_memory():
    size = (480, 640)
    soft = soft_masks()
    soft[2] = 0  # an empty mask: a 0 x 0 window on the host
    windows = mask_windows(soft, size, 0.5)
    host = to_windowed_masks(windows, len(BOXES), size)
    np.testing.assert_array_equal(host.to_dense(), paste_masks(windows, len(BOXES), size).numpy())
    assert host.windows[2].shape == (0, 0)
    assert sum(window.size for window in host.windows) < 0.6 * len(BOXES) * size[0] * size[1]
