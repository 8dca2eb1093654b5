"""The contextual loss: adjacent pixels of one instance together, other instances apart.

A non-parametric instance-discrimination (InfoNCE-like) loss on the per-pixel prototype vectors.
Per image, with an instance-id map at prototype resolution (``0`` background, ``g + 1`` the
``g``-th instance, ``-1`` pixels where instances overlap: ignored everywhere):

1. **Anchors** are pixels of an instance having at least one adjacent pixel of the same
   instance. Adjacency is the 8-neighbourhood by default (``max(|dy|, |dx|) == 1``) or the
   4-neighbourhood (``|dy| + |dx| == 1``). Up to ``num_anchors`` are drawn without replacement,
   each instance equally likely (weights ``1 / area``, Efraimidis-Spirakis keys
   ``area * log(u)``), so small objects are not drowned by large ones.
2. **Positives** of anchor ``i``, ``P(i)``: its adjacent pixels of the same instance, gathered
   directly from the embedding map (never sampled, so every anchor has at least one).
3. **Negatives**: one pool of up to ``num_negatives`` pixels per image, drawn the same way from
   the pixels of instances (and of the background with ``background_negatives``). ``N(i)`` is
   the pool's pixels of *other* instances than ``i``'s (and background pixels if enabled).
4. Pixels of ``i``'s own instance that are not adjacent to it (including those in the pool)
   are in neither set: the loss exerts no force between them and ``i``.

With ``e`` the embedding (the prototype vector ``proto[n, y, x, :]``, ``M`` values),
``s_ij = clamp(cos(e_i, e_j), -1, 1)``, distance ``d_ij = (1 - s_ij) / 2`` in [0, 1] and kernel
``k_ij = exp(-d_ij / h)`` (bandwidth ``h``)::

    l_i = -log( sum_{j in P(i)} k_ij / (sum_{j in P(i)} k_ij + sum_{j in N(i)} k_ij) )

    loss = mean of l_i over the anchors of the batch with N(i) non-empty

``l_i >= 0``; anchors without negatives (``l_i = 0`` identically) are left out of the mean. The
loss is 0, finite and still attached to the embeddings' graph (zero gradients) when no anchor
qualifies: no instance, only single-pixel instances, a single instance without
``background_negatives``.

Sampling uses ``generator`` when given (a ``torch.Generator``: ``get_state`` / ``set_state``
make it resumable), else the global RNG of the embeddings' device, which the training
checkpoint already saves (``yolact_ros.engine.state.capture_rng``). Everything is batched: no
Python loop over images or anchors.
"""

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor
import torch.nn.functional as F

NEIGHBOURHOODS = (4, 8)
_OFFSETS = {
    4: ((-1, 0), (1, 0), (0, -1), (0, 1)),
    8: ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)),
}


@dataclass(frozen=True)
class ContextualSample:
    """The pixels one call of the loss uses, as flat indices ``y * W + x`` per image.

    Attributes:
        anchors: ``int64[N, A]`` anchor pixels.
        anchor_valid: ``bool[N, A]``: False for padding (fewer eligible pixels than ``A``).
        negatives: ``int64[N, B]`` the negative pool.
        negative_valid: ``bool[N, B]``: False for padding.
    """

    anchors: Tensor
    anchor_valid: Tensor
    negatives: Tensor
    negative_valid: Tensor


def neighbour_offsets(neighbourhood: int) -> Tuple[Tuple[int, int], ...]:
    """Return the ``(dy, dx)`` offsets of the 4- or 8-neighbourhood."""
    if neighbourhood not in NEIGHBOURHOODS:
        raise ValueError(f'neighbourhood must be 4 or 8, got {neighbourhood}')
    return _OFFSETS[neighbourhood]


def instance_ids(masks: Tensor) -> Tensor:
    """Label each pixel with the one instance covering it.

    Args:
        masks: ``Tensor[G, H, W]`` binary instance masks (any dtype; nonzero = inside).

    Returns:
        ``int64[H, W]``: ``g + 1`` for a pixel of instance ``g`` only, 0 for background, -1 for
        a pixel covered by more than one instance.
    """
    if masks.ndim != 3:
        raise ValueError(f'expected masks [G, H, W], got {tuple(masks.shape)}')
    if masks.shape[0] == 0:
        return torch.zeros(masks.shape[1:], dtype=torch.int64, device=masks.device)
    inside = masks != 0  # (G, H, W)
    owner = inside.to(torch.uint8).argmax(dim=0) + 1  # (H, W): first instance covering it, + 1
    count = inside.sum(dim=0)  # (H, W)
    return torch.where(count == 1, owner, torch.where(count == 0, 0, -1))


def _check_ids(ids: Tensor) -> None:
    if ids.ndim != 3 or ids.dtype != torch.int64:
        raise ValueError(f'expected ids int64[N, H, W], got {ids.dtype} {tuple(ids.shape)}')


def _balanced_keys(ids: Tensor, eligible: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    """Efraimidis-Spirakis keys giving each instance id the same total weight.

    Args:
        ids: ``int64[N, L]`` instance ids (-1 .. G).
        eligible: ``bool[N, L]``.

    Returns:
        ``Tensor[N, L]``: ``area(id) * log(u)`` with ``u`` uniform in (0, 1], ``-inf`` where not
        eligible; the ``k`` largest keys are a weighted sample without replacement.
    """
    shifted = ids + 1  # (N, L) in 0 .. G + 1
    groups = int(shifted.max()) + 1 if shifted.numel() else 1
    area = torch.zeros(ids.shape[0], groups, device=ids.device).scatter_add_(
        1, shifted, torch.ones(ids.shape, device=ids.device))  # (N, G + 2)
    device = generator.device if generator is not None else ids.device
    uniform = 1.0 - torch.rand(ids.shape, generator=generator, device=device)  # (0, 1]
    keys = area.gather(1, shifted) * uniform.to(ids.device).log()  # (N, L)
    return keys.masked_fill(~eligible, float('-inf'))


def _top(keys: Tensor, eligible: Tensor, count: int) -> Tuple[Tensor, Tensor]:
    """Return the indices of the ``count`` largest keys per row and whether each is drawn.

    The width is ``min(count, most eligible pixels of an image)``: no columns of padding only.
    """
    most = int(eligible.sum(dim=1).max()) if eligible.numel() else 0
    values, indices = keys.topk(max(min(count, most), 1), dim=1)  # (N, width)
    return indices, values > float('-inf')


def sample_contextual(ids: Tensor, *, num_anchors: int = 1024, num_negatives: int = 256,
                      neighbourhood: int = 8, background_negatives: bool = False,
                      generator: Optional[torch.Generator] = None) -> ContextualSample:
    """Draw the anchors and the negative pool of each image (see the module docstring).

    Args:
        ids: ``int64[N, H, W]`` instance ids (0 background, -1 ignored).
        num_anchors: anchors drawn per image at most (``A``).
        num_negatives: negative pool per image at most (``B``).
        neighbourhood: 4 or 8.
        background_negatives: whether background pixels can be negatives.
        generator: RNG for the draw; ``None``: the global RNG of ``ids``' device.

    Returns:
        The :class:`ContextualSample`; ``A`` (``B``) is ``num_anchors`` (``num_negatives``) or
        the most eligible pixels of an image if fewer.
    """
    _check_ids(ids)
    if num_anchors < 1 or num_negatives < 1:
        raise ValueError(f'num_anchors and num_negatives must be >= 1, got {num_anchors} and '
                         f'{num_negatives}')
    batch, height, width = ids.shape
    padded = F.pad(ids, (1, 1, 1, 1), value=-1)  # (N, H + 2, W + 2)
    has_neighbour = torch.zeros_like(ids, dtype=torch.bool)  # (N, H, W)
    for dy, dx in neighbour_offsets(neighbourhood):
        has_neighbour |= padded[:, 1 + dy:1 + dy + height, 1 + dx:1 + dx + width] == ids
    flat = ids.reshape(batch, height * width)  # (N, H, W) -> (N, HW)
    anchor_ok = (flat > 0) & has_neighbour.reshape(batch, -1)  # (N, HW)
    negative_ok = (flat >= 0) if background_negatives else (flat > 0)  # (N, HW)
    anchors, anchor_valid = _top(_balanced_keys(flat, anchor_ok, generator), anchor_ok,
                                 num_anchors)
    negatives, negative_valid = _top(_balanced_keys(flat, negative_ok, generator), negative_ok,
                                     num_negatives)
    return ContextualSample(anchors, anchor_valid, negatives, negative_valid)


def contextual_terms(embeddings: Tensor, ids: Tensor, sample: ContextualSample, *,
                     bandwidth: float, neighbourhood: int = 8,
                     background_negatives: bool = False) -> Tuple[Tensor, Tensor]:
    """Per-anchor terms ``l_i`` for a drawn sample.

    Args:
        embeddings: ``Tensor[N, H, W, M]`` per-pixel embeddings (normalised here).
        ids: ``int64[N, H, W]`` instance ids (0 background, -1 ignored).
        sample: anchors and negative pool, e.g. from :func:`sample_contextual`.
        bandwidth: kernel bandwidth ``h``.
        neighbourhood: 4 or 8.
        background_negatives: whether background pixels of the pool are negatives.

    Returns:
        ``Tensor[N, A]`` the terms ``l_i`` and ``bool[N, A]`` which of them count (a valid
        anchor with at least one positive and one negative); the others are 0.
    """
    if bandwidth <= 0:
        raise ValueError(f'bandwidth must be > 0, got {bandwidth}')
    _check_ids(ids)
    if embeddings.ndim != 4 or embeddings.shape[:3] != ids.shape:
        raise ValueError(f'expected embeddings [N, H, W, M] with [N, H, W] = '
                         f'{tuple(ids.shape)}, got {tuple(embeddings.shape)}')
    batch, height, width, channels = embeddings.shape
    embeddings = embeddings.to(torch.promote_types(embeddings.dtype, torch.float32))
    table = embeddings.reshape(batch, height * width, channels)  # (N, H, W, M) -> (N, HW, M)
    flat_ids = ids.reshape(batch, height * width)  # (N, HW)
    anchors, negatives = sample.anchors, sample.negatives  # (N, A), (N, B)
    count = anchors.shape[1]

    # Neighbours of each anchor, straight from the map: (N, A, K).
    offsets = neighbour_offsets(neighbourhood)
    delta_y = torch.tensor([dy for dy, _ in offsets], device=ids.device)  # (K,)
    delta_x = torch.tensor([dx for _, dx in offsets], device=ids.device)  # (K,)
    rows = (anchors // width)[:, :, None] + delta_y  # (N, A, K)
    columns = (anchors % width)[:, :, None] + delta_x  # (N, A, K)
    inside = (rows >= 0) & (rows < height) & (columns >= 0) & (columns < width)
    neighbours = rows.clamp(0, height - 1) * width + columns.clamp(0, width - 1)  # (N, A, K)
    anchor_ids = flat_ids.gather(1, anchors)  # (N, A)
    neighbour_ids = flat_ids.gather(1, neighbours.reshape(batch, -1)).reshape(neighbours.shape)
    positive = (inside & (neighbour_ids == anchor_ids[:, :, None]) & (anchor_ids > 0)[:, :, None]
                & sample.anchor_valid[:, :, None])  # (N, A, K)

    # Negatives: pool pixels of other instances (or background if enabled): (N, A, B).
    pool_ids = flat_ids.gather(1, negatives)  # (N, B)
    pool_ok = sample.negative_valid & ((pool_ids >= 0) if background_negatives else (pool_ids > 0))
    negative = pool_ok[:, None, :] & (pool_ids[:, None, :] != anchor_ids[:, :, None])

    def take(index: Tensor) -> Tensor:  # (N, S) -> (N, S, M), unit vectors
        return F.normalize(table.gather(1, index[:, :, None].expand(-1, -1, channels)), dim=2)

    unit_anchor = take(anchors)  # (N, A, M)
    unit_neighbour = take(neighbours.reshape(batch, -1)).reshape(batch, count, len(offsets),
                                                                 channels)  # (N, A, K, M)
    unit_pool = take(negatives)  # (N, B, M)
    similarity_positive = torch.einsum('nam,nakm->nak', unit_anchor, unit_neighbour)
    similarity_negative = unit_anchor @ unit_pool.transpose(1, 2)  # (N, A, M) @ (N, M, B)
    # log k = -d / h; excluded pairs get a finite log-kernel far below any real one (exp() is
    # exactly 0), so rows with nothing to sum stay finite and masked_fill gives them no gradient.
    excluded = -1.0 / bandwidth - 1000.0
    log_positive = (-(1.0 - similarity_positive.clamp(-1.0, 1.0)) / (2.0 * bandwidth)
                    ).masked_fill(~positive, excluded)  # (N, A, K)
    log_negative = (-(1.0 - similarity_negative.clamp(-1.0, 1.0)) / (2.0 * bandwidth)
                    ).masked_fill(~negative, excluded)  # (N, A, B)
    numerator = log_positive.logsumexp(dim=2)  # (N, A)
    denominator = torch.logaddexp(numerator, log_negative.logsumexp(dim=2))  # (N, A)
    valid = positive.any(dim=2) & negative.any(dim=2)  # (N, A)
    return torch.where(valid, denominator - numerator, 0.0), valid


def contextual_loss_from_ids(embeddings: Tensor, ids: Tensor, *, num_anchors: int = 1024,
                             num_negatives: int = 256, bandwidth: float = 0.1,
                             neighbourhood: int = 8, background_negatives: bool = False,
                             generator: Optional[torch.Generator] = None) -> Tensor:
    """Mean contextual term over a batch given instance-id maps (see the module docstring).

    Args:
        embeddings: ``Tensor[N, H, W, M]`` per-pixel embeddings (the prototypes' layout).
        ids: ``int64[N, H, W]``: 0 background, ``g > 0`` an instance, -1 ignored.
        num_anchors: anchors drawn per image at most.
        num_negatives: negative pool per image at most.
        bandwidth: kernel bandwidth ``h``.
        neighbourhood: 4 or 8: which same-instance pixels are an anchor's positives.
        background_negatives: whether background pixels are negatives too.
        generator: RNG of the draw; ``None``: the global RNG of the embeddings' device.

    Returns:
        Scalar tensor (0 with a gradient path when no anchor qualifies).
    """
    sample = sample_contextual(ids, num_anchors=num_anchors, num_negatives=num_negatives,
                               neighbourhood=neighbourhood,
                               background_negatives=background_negatives, generator=generator)
    terms, valid = contextual_terms(embeddings, ids, sample, bandwidth=bandwidth,
                                    neighbourhood=neighbourhood,
                                    background_negatives=background_negatives)
    return terms.sum() / valid.sum().clamp(min=1)


def contextual_loss(proto: Tensor, instance_masks: Sequence[Tensor], *, num_anchors: int = 1024,
                    num_negatives: int = 256, bandwidth: float = 0.1, neighbourhood: int = 8,
                    background_negatives: bool = False,
                    generator: Optional[torch.Generator] = None) -> Tensor:
    """Mean contextual term over the batch, from ground-truth masks (the criterion's entry).

    Args:
        proto: ``Tensor[N, Hp, Wp, M]`` prototypes; the embedding of a pixel is ``proto[n, y, x]``.
        instance_masks: ``N`` tensors ``[G_n, Hp, Wp]`` of binary ground-truth masks at
            prototype resolution (pixels of several instances are ignored).
        num_anchors: anchors drawn per image at most.
        num_negatives: negative pool per image at most.
        bandwidth: kernel bandwidth ``h``.
        neighbourhood: 4 or 8 (adjacency of same-instance pixels).
        background_negatives: whether background pixels are negatives too.
        generator: RNG of the draw; ``None``: the global RNG of the prototypes' device.

    Returns:
        Scalar tensor (0 with a gradient path when no anchor qualifies).
    """
    if proto.ndim != 4:
        raise ValueError(f'expected proto [N, Hp, Wp, M], got {tuple(proto.shape)}')
    if len(instance_masks) != proto.shape[0]:
        raise ValueError(f'{proto.shape[0]} images but {len(instance_masks)} mask tensors')
    height, width = proto.shape[1:3]
    for masks in instance_masks:
        if masks.ndim != 3 or masks.shape[1:] != (height, width):
            raise ValueError(f'expected masks [G, {height}, {width}] at prototype resolution, '
                             f'got {tuple(masks.shape)}')
    ids = torch.stack([instance_ids(masks.to(proto.device)) for masks in instance_masks]) \
        if len(instance_masks) else proto.new_zeros((0, height, width), dtype=torch.int64)
    return contextual_loss_from_ids(
        proto, ids, num_anchors=num_anchors, num_negatives=num_negatives, bandwidth=bandwidth,
        neighbourhood=neighbourhood, background_negatives=background_negatives,
        generator=generator)
