"""The contextual loss: hand-computed cases, the forces it exerts, sampling and edge cases."""

import math

import pytest
import torch
import torch.nn.functional as F

from yolact_ros.engine.state import capture_rng, restore_rng
from yolact_ros.losses import contextual_loss
from yolact_ros.losses.contextual import (contextual_loss_from_ids, contextual_terms,
                                          instance_ids, neighbour_offsets, sample_contextual)

E = math.exp(-1.0)  # kernel of orthogonal embeddings at h = 0.5: exp(-(1 - 0) / 2 / 0.5)


def _proto(height: int, width: int, vectors: dict) -> torch.Tensor:
    """Return ``[1, H, W, 2]`` prototypes holding ``vectors[(y, x)]`` (zeros elsewhere)."""
    proto = torch.zeros(1, height, width, 2)
    for (row, column), vector in vectors.items():
        proto[0, row, column] = torch.tensor(vector)
    return proto


def _cosine(proto: torch.Tensor, first: tuple, second: tuple) -> float:
    return F.cosine_similarity(proto[0, first[0], first[1]], proto[0, second[0], second[1]],
                               dim=0).item()


def test_three_pixels_in_a_row_by_hand():
    # p0 = (0, 0) and p1 = (0, 1) belong to instance A, p2 = (0, 2) to instance B.
    # Embeddings e0 = (1, 0), e1 = (.6, .8), e2 = (0, 1); h = 0.5:
    # d01 = (1 - .6) / 2 = .2, d02 = .5, d12 = (1 - .8) / 2 = .1; k = exp(-d / .5).
    # p0: -log(k01 / (k01 + k02)) = log(1 + exp(-1 + .4)) = 0.4374880
    # p1: -log(k01 / (k01 + k12)) = log(1 + exp(-.2 + .4)) = 0.7981389 (p2 is adjacent but B)
    # p2: no same-instance neighbour, not an anchor.  Mean = 0.6178134.
    proto = _proto(1, 3, {(0, 0): (1.0, 0.0), (0, 1): (0.6, 0.8), (0, 2): (0.0, 1.0)})
    masks = torch.tensor([[[1, 1, 0]], [[0, 0, 1]]], dtype=torch.uint8)  # (G=2, 1, 3)
    loss = contextual_loss(proto, [masks], bandwidth=0.5)
    assert loss.item() == pytest.approx(0.6178134, abs=1e-6)
    # Scaling an embedding does not change it (cosine similarity).
    scaled = contextual_loss(proto * 3.0, [masks], bandwidth=0.5)
    assert scaled.item() == pytest.approx(0.6178134, abs=1e-6)
    # p2 as background instead: no negative at all, unless background pixels are negatives.
    background = masks[:1]
    assert contextual_loss(proto, [background], bandwidth=0.5).item() == 0.0
    with_background = contextual_loss(proto, [background], bandwidth=0.5,
                                      background_negatives=True)
    assert with_background.item() == pytest.approx(0.6178134, abs=1e-6)


def test_four_and_eight_neighbourhoods_by_hand():
    # A 2x2 block of instance A with equal embeddings (k = 1 between them) and one B pixel at
    # (0, 3) orthogonal to them (k = e^-1 to each A pixel at h = 0.5).
    # 8-neighbourhood: 3 positives each: log((3 + e^-1) / 3) = 0.1156710
    # 4-neighbourhood: 2 positives each; the diagonal A pixel is neither positive nor negative:
    # log((2 + e^-1) / 2) = 0.1688476
    vectors = {(0, 0): (1.0, 0.0), (0, 1): (1.0, 0.0), (1, 0): (1.0, 0.0), (1, 1): (1.0, 0.0),
               (0, 3): (0.0, 1.0)}
    proto = _proto(2, 4, vectors)
    masks = torch.zeros(2, 2, 4, dtype=torch.uint8)
    masks[0, :, :2] = 1
    masks[1, 0, 3] = 1
    eight = contextual_loss(proto, [masks], bandwidth=0.5, neighbourhood=8)
    four = contextual_loss(proto, [masks], bandwidth=0.5, neighbourhood=4)
    assert eight.item() == pytest.approx(math.log((3 + E) / 3), abs=1e-6)
    assert four.item() == pytest.approx(0.1688476, abs=1e-6)
    assert math.log((2 + E) / 2) == pytest.approx(0.1688476, abs=1e-6)
    assert neighbour_offsets(4) == ((-1, 0), (1, 0), (0, -1), (0, 1))
    assert len(neighbour_offsets(8)) == 8


def test_far_pixels_of_the_same_instance_are_left_out_by_hand():
    # Row A A A B with e = (1,0), (1,0), (0,1), (0,1), h = 0.5. p0's positive is p1 only; p2 is
    # the same instance but not adjacent, so it is not in p0's denominator either:
    # p0: log(1 + e^-1) = 0.3132617;  p1 (positives p0, p2): log((1 + 2e^-1) / (1 + e^-1))
    # = 0.2381830;  p2 (positive p1, k = e^-1; negative p3, k = 1): log(1 + e) = 1.3132617.
    proto = _proto(1, 4, {(0, 0): (1.0, 0.0), (0, 1): (1.0, 0.0), (0, 2): (0.0, 1.0),
                          (0, 3): (0.0, 1.0)})
    masks = torch.tensor([[[1, 1, 1, 0]], [[0, 0, 0, 1]]])
    expected = (math.log(1 + E) + math.log((1 + 2 * E) / (1 + E)) + math.log(1 + math.e)) / 3
    assert expected == pytest.approx(0.6215688, abs=1e-6)
    assert contextual_loss(proto, [masks], bandwidth=0.5).item() == pytest.approx(expected,
                                                                                  abs=1e-6)


def test_a_gradient_step_pulls_neighbours_together_and_pushes_instances_apart():
    # Instance A: (0, 0), (0, 1); instance B: (0, 2), (0, 3). Random embeddings.
    torch.manual_seed(0)
    proto = torch.randn(1, 1, 4, 8, requires_grad=True)
    masks = torch.tensor([[[1, 1, 0, 0]], [[0, 0, 1, 1]]])
    before_same = _cosine(proto.detach(), (0, 0), (0, 1))
    before_other = _cosine(proto.detach(), (0, 1), (0, 2))
    contextual_loss(proto, [masks], bandwidth=0.5).backward()
    stepped = (proto - 0.1 * proto.grad).detach()
    assert _cosine(stepped, (0, 0), (0, 1)) > before_same + 1e-4  # (a) pulled together
    assert _cosine(stepped, (0, 1), (0, 2)) < before_other - 1e-4  # (b) pushed apart
    assert contextual_loss(stepped, [masks], bandwidth=0.5) < contextual_loss(
        proto.detach(), [masks], bandwidth=0.5)


@pytest.mark.parametrize('background_negatives', [False, True])
def test_no_force_between_far_pixels_of_one_instance(background_negatives):
    # Instance 1 is a long strip (row 3), instance 2 a block; two anchors only, so most of the
    # strip is neither an anchor, a neighbour of one, nor a negative of one: its gradient must
    # be exactly zero. The nonzero gradients are exactly on anchors, positives and negatives.
    ids = torch.zeros(1, 8, 30, dtype=torch.int64)
    ids[0, 3, :] = 1
    ids[0, 5:8, 0:3] = 2
    torch.manual_seed(1)
    proto = torch.randn(1, 8, 30, 6, requires_grad=True)
    options = {'neighbourhood': 8, 'background_negatives': background_negatives}
    generator = torch.Generator().manual_seed(7)
    sample = sample_contextual(ids, num_anchors=2, num_negatives=12, generator=generator,
                               **options)
    terms, valid = contextual_terms(proto, ids, sample, bandwidth=0.3, **options)
    (terms.sum() / valid.sum()).backward()
    # The same draw through the public function gives the same loss.
    same = contextual_loss_from_ids(proto, ids, num_anchors=2, num_negatives=12, bandwidth=0.3,
                                    generator=torch.Generator().manual_seed(7), **options)
    assert same.item() == pytest.approx((terms.sum() / valid.sum()).item())

    width = ids.shape[2]
    flat_ids = ids.reshape(-1)
    expected = set()
    for anchor, anchor_ok in zip(sample.anchors[0].tolist(), sample.anchor_valid[0].tolist()):
        assert anchor_ok and flat_ids[anchor] > 0
        row, column = divmod(anchor, width)
        expected.add(anchor)
        for dy, dx in neighbour_offsets(8):
            y, x = row + dy, column + dx
            if 0 <= y < ids.shape[1] and 0 <= x < width and ids[0, y, x] == flat_ids[anchor]:
                expected.add(y * width + x)
        for pixel, pixel_ok in zip(sample.negatives[0].tolist(),
                                   sample.negative_valid[0].tolist()):
            other = flat_ids[pixel] != flat_ids[anchor]
            if pixel_ok and other and (flat_ids[pixel] > 0 or background_negatives):
                expected.add(pixel)
    nonzero = set(proto.grad[0].abs().sum(dim=2).reshape(-1).nonzero().squeeze(1).tolist())
    assert nonzero == expected
    strip = set(range(3 * width, 4 * width))
    far = strip - expected
    assert len(far) > 10  # far pixels of the strip, some of them in the negative pool
    assert all(proto.grad[0, 3, pixel % width].abs().max() == 0.0 for pixel in far)


def test_every_anchor_has_positives_and_negatives_are_other_instances():
    ids = torch.zeros(2, 20, 20, dtype=torch.int64)
    ids[0, 2:12, 2:12] = 1
    ids[0, 14:16, 3:18] = 2
    ids[0, 0, 19] = 3  # a single pixel: never an anchor
    ids[0, 5, 5] = -1  # overlap: never anything
    ids[1, 10:11, 0:20] = 4
    sample = sample_contextual(ids, num_anchors=64, num_negatives=32,
                               generator=torch.Generator().manual_seed(3))
    assert sample.anchors.shape == (2, 64) and sample.negatives.shape == (2, 32)
    flat = ids.reshape(2, -1)
    anchor_ids = flat.gather(1, sample.anchors)[sample.anchor_valid]
    assert set(anchor_ids.tolist()) == {1, 2, 4}  # both instances of image 0 drawn
    pool_ids = flat.gather(1, sample.negatives)[sample.negative_valid]
    assert set(pool_ids.tolist()) <= {1, 2, 3, 4}
    # Balanced: the 30-pixel strip gets about as many anchors as the 100-pixel block.
    strip = int((flat[0].gather(0, sample.anchors[0]) == 2).sum())
    assert 20 <= strip <= 30
    terms, valid = contextual_terms(torch.randn(2, 20, 20, 4), ids, sample, bandwidth=0.1)
    assert valid[0].all()  # image 0: two instances, every anchor has a negative
    assert not valid[1].any()  # image 1: one instance and no background negatives
    assert (terms[valid] > 0).all() and (terms[~valid] == 0).all()


def test_empty_and_single_instance_images_give_zero_with_a_graph():
    proto = torch.rand(2, 6, 6, 3, requires_grad=True)
    for masks in ([torch.zeros(0, 6, 6)] * 2, [torch.ones(1, 6, 6), torch.zeros(0, 6, 6)]):
        for background in (False, True):
            loss = contextual_loss(proto, masks, background_negatives=background)
            assert loss.item() == 0.0 and loss.requires_grad
            proto.grad = None
            loss.backward()
            assert torch.equal(proto.grad, torch.zeros_like(proto))
    one = torch.zeros(1, 6, 6)
    one[0, 1:4, 1:4] = 1
    assert contextual_loss(proto, [one, one]).item() == 0.0
    loss = contextual_loss(proto, [one, one], background_negatives=True)
    assert torch.isfinite(loss) and loss.item() > 0.0
    pixel = torch.zeros(2, 6, 6)
    pixel[0, 2, 2] = 1
    pixel[1, 4, 4] = 1
    assert contextual_loss(proto, [pixel, pixel], background_negatives=True).item() == 0.0


def test_zero_embeddings_give_finite_gradients():
    proto = torch.zeros(1, 3, 3, 4, requires_grad=True)  # ReLU'd prototypes can be all zero
    masks = torch.zeros(2, 3, 3)
    masks[0, :, :2] = 1
    masks[1, :, 2] = 1
    loss = contextual_loss(proto, [masks])
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(proto.grad).all()


def test_instance_ids_mark_background_and_overlaps():
    masks = torch.zeros(2, 2, 4, dtype=torch.uint8)
    masks[0, :, :2] = 1
    masks[1, :, 1:3] = 1  # column 1 is covered twice, column 3 by nothing
    assert instance_ids(masks).tolist() == [[1, -1, 2, 0], [1, -1, 2, 0]]
    assert instance_ids(torch.zeros(0, 2, 3)).tolist() == [[0, 0, 0], [0, 0, 0]]


def test_sampling_resumes_from_a_saved_generator_state_and_the_global_rng():
    ids = torch.zeros(2, 30, 30, dtype=torch.int64)
    ids[:, 3:20, 4:25] = 1
    ids[:, 22:28, 1:29] = 2
    proto = torch.randn(2, 30, 30, 5)
    generator = torch.Generator().manual_seed(11)
    sample_contextual(ids, num_anchors=16, generator=generator)  # advance it
    saved = generator.get_state()
    first = sample_contextual(ids, num_anchors=16, num_negatives=8, generator=generator)
    loss_first = contextual_loss_from_ids(proto, ids, num_anchors=16, num_negatives=8,
                                          generator=generator)
    resumed = torch.Generator()
    resumed.set_state(saved)
    again = sample_contextual(ids, num_anchors=16, num_negatives=8, generator=resumed)
    loss_again = contextual_loss_from_ids(proto, ids, num_anchors=16, num_negatives=8,
                                          generator=resumed)
    assert torch.equal(first.anchors, again.anchors)
    assert torch.equal(first.negatives, again.negatives)
    assert loss_first.item() == loss_again.item()
    different = sample_contextual(ids, num_anchors=16, num_negatives=8, generator=resumed)
    assert not torch.equal(first.anchors, different.anchors)
    # Without a generator: the global RNG, which training checkpoints save (capture_rng).
    rng = capture_rng()
    loss_a = contextual_loss_from_ids(proto, ids, num_anchors=16, num_negatives=8)
    restore_rng(rng)
    loss_b = contextual_loss_from_ids(proto, ids, num_anchors=16, num_negatives=8)
    assert loss_a.item() == loss_b.item()


@pytest.mark.parametrize('size', [(9, 9), (16, 12)])
def test_batched_shapes_and_backward(size):
    height, width = size
    torch.manual_seed(2)
    proto = torch.randn(3, height, width, 4, requires_grad=True)
    masks = [torch.zeros(0, height, width), torch.zeros(2, height, width),
             torch.zeros(1, height, width)]
    masks[1][0, :4, :4] = 1
    masks[1][1, 5:, 5:] = 1
    masks[2][0, 2:6, 1:5] = 1
    loss = contextual_loss(proto, masks, num_anchors=5, num_negatives=7,
                           background_negatives=True)
    assert loss.shape == () and torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    assert proto.grad.shape == proto.shape and torch.isfinite(proto.grad).all()
    assert proto.grad[0].abs().sum() == 0.0  # no instance in image 0: no anchors
    ids = torch.stack([instance_ids(m) for m in masks])  # (N, H, W)
    sample = sample_contextual(ids, num_anchors=5, num_negatives=7, background_negatives=True)
    assert sample.anchors.shape == (3, 5) and sample.negatives.shape == (3, 7)
    half = contextual_loss(proto.detach().half(), masks, num_anchors=5)  # computed in float32
    assert half.dtype == torch.float32 and torch.isfinite(half)


def test_bad_arguments_name_the_value():
    proto = torch.zeros(1, 4, 4, 2)
    with pytest.raises(ValueError, match=r'expected masks \[G, 4, 4\] at prototype resolution, '
                                         r'got \(1, 8, 8\)'):
        contextual_loss(proto, [torch.zeros(1, 8, 8)])
    with pytest.raises(ValueError, match='neighbourhood must be 4 or 8, got 6'):
        contextual_loss(proto, [torch.ones(1, 4, 4)], neighbourhood=6)
    with pytest.raises(ValueError, match='bandwidth must be > 0, got 0'):
        contextual_loss(proto, [torch.ones(1, 4, 4)], bandwidth=0)
    with pytest.raises(ValueError, match=r'expected ids int64\[N, H, W\], got torch.float32'):
        contextual_loss_from_ids(proto, torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match=r'expected embeddings \[N, H, W, M\] with \[N, H, W\] '
                                         r'= \(1, 4, 5\), got \(1, 4, 4, 2\)'):
        contextual_loss_from_ids(proto, torch.zeros(1, 4, 5, dtype=torch.int64))
    with pytest.raises(ValueError, match='num_anchors and num_negatives must be >= 1, got 0'):
        contextual_loss(proto, [torch.ones(1, 4, 4)], num_anchors=0)
