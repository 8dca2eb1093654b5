"""The contextual loss against hand-computed cases, and its edge cases."""

import math

import pytest
import torch

from yolact_ros.losses import contextual_loss
from yolact_ros.losses.contextual import instance_ids, sample_pixels


def _proto(height: int, width: int, vectors: dict) -> torch.Tensor:
    """Return ``[1, H, W, 2]`` prototypes holding ``vectors[(y, x)]`` (zeros elsewhere)."""
    proto = torch.zeros(1, height, width, 2)
    for (row, column), vector in vectors.items():
        proto[0, row, column] = torch.tensor(vector)
    return proto


def test_three_pixels_in_a_row_by_hand():
    # p0 = (0, 0) and p1 = (0, 1) belong to instance A, p2 = (0, 2) to instance B.
    # Embeddings e0 = (1, 0), e1 = (.6, .8), e2 = (0, 1); h = 0.5:
    # d01 = (1 - .6) / 2 = .2, d02 = .5, d12 = (1 - .8) / 2 = .1; k = exp(-d / .5).
    # p0: -log(k01 / (k01 + k02)) = log(1 + exp(-1 + .4)) = 0.4374880
    # p1: -log(k01 / (k01 + k12)) = log(1 + exp(-.2 + .4)) = 0.7981389 (p2 is adjacent but B)
    # p2: no same-instance neighbour, left out.  Mean = 0.6178134.
    proto = _proto(1, 3, {(0, 0): (1.0, 0.0), (0, 1): (0.6, 0.8), (0, 2): (0.0, 1.0)})
    masks = torch.tensor([[[1, 1, 0]], [[0, 0, 1]]], dtype=torch.uint8)  # (G=2, 1, 3)
    loss = contextual_loss(proto, [masks], bandwidth=0.5)
    assert loss.item() == pytest.approx(0.6178134, abs=1e-6)
    # Scaling an embedding does not change it (cosine similarity).
    scaled = contextual_loss(proto * 3.0, [masks], bandwidth=0.5)
    assert scaled.item() == pytest.approx(0.6178134, abs=1e-6)


def test_four_and_eight_neighbourhoods_by_hand():
    # A 2x2 block of instance A with equal embeddings (k = 1 between them) and one B pixel at
    # (0, 3) orthogonal to them (k = exp(-.5 / .5) = e^-1 to each A pixel).
    # 8-neighbourhood: 3 neighbours each: log((3 + e^-1) / 3) = 0.1156710
    # 4-neighbourhood: 2 neighbours each: log((3 + e^-1) / 2) = 0.5211361
    vectors = {(0, 0): (1.0, 0.0), (0, 1): (1.0, 0.0), (1, 0): (1.0, 0.0), (1, 1): (1.0, 0.0),
               (0, 3): (0.0, 1.0)}
    proto = _proto(2, 4, vectors)
    masks = torch.zeros(2, 2, 4, dtype=torch.uint8)
    masks[0, :, :2] = 1
    masks[1, 0, 3] = 1
    eight = contextual_loss(proto, [masks], bandwidth=0.5, neighbourhood=8)
    four = contextual_loss(proto, [masks], bandwidth=0.5, neighbourhood=4)
    assert eight.item() == pytest.approx(0.1156710, abs=1e-6)
    assert four.item() == pytest.approx(0.5211361, abs=1e-6)
    assert math.log((3 + math.exp(-1)) / 2) == pytest.approx(0.5211361, abs=1e-6)


def test_no_instance_one_instance_and_one_pixel_are_finite():
    proto = torch.rand(2, 4, 4, 3, requires_grad=True)
    none = [torch.zeros(0, 4, 4), torch.zeros(0, 4, 4)]
    loss = contextual_loss(proto, none)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(proto.grad).all()

    one = torch.zeros(1, 4, 4)
    one[0] = 1  # far pixels of the instance sit in the denominator only
    loss = contextual_loss(proto, [one, torch.zeros(0, 4, 4)])
    assert torch.isfinite(loss) and loss.item() > 0.0

    pixel = torch.zeros(1, 4, 4)
    pixel[0, 2, 2] = 1
    assert contextual_loss(proto, [pixel, pixel]).item() == 0.0


def test_zero_embeddings_give_finite_gradients():
    proto = torch.zeros(1, 3, 3, 4, requires_grad=True)  # ReLU'd prototypes can be all zero
    masks = torch.zeros(2, 3, 3)
    masks[0, :, :2] = 1
    masks[1, :, 2] = 1
    loss = contextual_loss(proto, [masks])
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(proto.grad).all()


def test_overlapping_pixels_are_left_out():
    masks = torch.zeros(2, 2, 3, dtype=torch.uint8)
    masks[0, :, :2] = 1
    masks[1, :, 1:] = 1  # column 1 is covered twice
    ids = instance_ids(masks)
    assert ids.tolist() == [[0, -1, 1], [0, -1, 1]]


def test_sampling_is_capped_and_reproducible_from_the_torch_seed():
    ids = torch.zeros(10, 10, dtype=torch.int64)
    ids[0, 0] = -1
    torch.manual_seed(5)
    first = sample_pixels(ids, 16)
    torch.manual_seed(5)
    again = sample_pixels(ids, 16)
    assert first.numel() == 16 and torch.equal(first, again)
    assert 0 not in first.tolist()  # the background pixel is never drawn
    assert sample_pixels(ids, 1000).numel() == 99

    proto = torch.rand(1, 10, 10, 4)
    masks = torch.zeros(1, 10, 10)
    masks[0, 2:8, 2:8] = 1
    torch.manual_seed(1)
    loss_a = contextual_loss(proto, [masks], num_samples=12)
    torch.manual_seed(1)
    loss_b = contextual_loss(proto, [masks], num_samples=12)
    assert loss_a.item() == loss_b.item()


def test_bad_arguments_name_the_value():
    proto = torch.zeros(1, 4, 4, 2)
    with pytest.raises(ValueError, match=r'expected masks \[G, 4, 4\] at prototype resolution, '
                                         r'got \(1, 8, 8\)'):
        contextual_loss(proto, [torch.zeros(1, 8, 8)])
    with pytest.raises(ValueError, match='neighbourhood must be 4 or 8, got 6'):
        masks = torch.ones(1, 4, 4)
        contextual_loss(proto, [masks], neighbourhood=6)
