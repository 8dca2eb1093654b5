"""The contextual loss: adjacent pixels of one instance should have similar prototype vectors.

The seed project described this loss but never ran it; this is its specification, implemented.
Per image:

1. Pixels covered by exactly one ground-truth instance mask (at prototype resolution) are the
   candidates; pixels where instances overlap are ambiguous and left out. Up to
   ``num_samples`` of them are drawn uniformly without replacement with ``torch.randperm`` on
   the default CPU generator (so a run resumed with the saved RNG state draws the same pixels).
2. Each sampled pixel's embedding is its prototype vector ``proto[y, x, :]`` (``M`` values),
   L2-normalised.
3. ``s_ij`` = cosine similarity clamped to [-1, 1]; distance ``d_ij = (1 - s_ij) / 2`` in [0, 1];
   kernel ``k_ij = exp(-d_ij / h)`` with bandwidth ``h``.
4. For each sampled pixel ``i`` with at least one *adjacent* sampled pixel of the same instance
   (8-neighbourhood by default: ``max(|dy|, |dx|) == 1``; 4-neighbourhood: ``|dy| + |dx| == 1``)::

       l_i = -log( sum_{j adjacent, same instance} k_ij / sum_{j != i, sampled} k_ij )

The loss is the mean of ``l_i`` over all such pixels of the batch. It is 0 (and finite, with a
gradient path) when no pixel has a same-instance neighbour: no instances, a single pixel, ...
Because the denominator includes the numerator's terms, ``l_i >= 0``.
"""

from typing import List, Sequence

import torch
from torch import Tensor
import torch.nn.functional as F

NEIGHBOURHOODS = (4, 8)


def instance_ids(masks: Tensor) -> Tensor:
    """Label each pixel with the one instance covering it.

    Args:
        masks: ``Tensor[G, H, W]`` binary instance masks (any dtype; nonzero = inside).

    Returns:
        ``int64[H, W]``: the instance index, or -1 for background and for pixels covered by more
        than one instance.
    """
    if masks.ndim != 3:
        raise ValueError(f'expected masks [G, H, W], got {tuple(masks.shape)}')
    if masks.shape[0] == 0:
        return torch.full(masks.shape[1:], -1, dtype=torch.int64, device=masks.device)
    inside = masks != 0  # (G, H, W)
    owner = inside.to(torch.uint8).argmax(dim=0)  # (H, W): first instance covering the pixel
    single = inside.sum(dim=0) == 1  # (H, W)
    return torch.where(single, owner, torch.full_like(owner, -1))


def sample_pixels(ids: Tensor, num_samples: int) -> Tensor:
    """Draw up to ``num_samples`` pixels of ``ids >= 0`` (``Tensor[H, W]``).

    Returns:
        ``int64[S]`` flat pixel indices (``y * W + x``), ascending, ``S <= num_samples``.
    """
    candidates = (ids.reshape(-1) >= 0).nonzero().squeeze(1)  # (C,)
    if candidates.numel() > num_samples:
        pick = torch.randperm(candidates.numel())[:num_samples].to(candidates.device)
        candidates = candidates[pick].sort().values
    return candidates


def contextual_terms(embeddings: Tensor, rows: Tensor, columns: Tensor, ids: Tensor, *,
                     bandwidth: float, neighbourhood: int = 8) -> Tensor:
    """Per-pixel contextual terms for one image's sampled pixels.

    Args:
        embeddings: ``Tensor[S, E]`` embeddings of the sampled pixels (normalised here).
        rows: ``int64[S]`` pixel rows.
        columns: ``int64[S]`` pixel columns.
        ids: ``int64[S]`` instance of each pixel.
        bandwidth: kernel bandwidth ``h``.
        neighbourhood: 4 or 8.

    Returns:
        ``Tensor[S']``: ``l_i`` for the ``S'`` pixels having a same-instance neighbour.
    """
    if neighbourhood not in NEIGHBOURHOODS:
        raise ValueError(f'neighbourhood must be 4 or 8, got {neighbourhood}')
    if bandwidth <= 0:
        raise ValueError(f'bandwidth must be > 0, got {bandwidth}')
    unit = F.normalize(embeddings.float(), dim=1)  # (S, E)
    similarity = (unit @ unit.t()).clamp(-1.0, 1.0)  # (S, S)
    log_kernel = -(1.0 - similarity) / 2.0 / bandwidth  # (S, S): log k_ij = -d_ij / h
    delta_rows = (rows[:, None] - rows[None, :]).abs()  # (S, S)
    delta_columns = (columns[:, None] - columns[None, :]).abs()  # (S, S)
    if neighbourhood == 8:
        adjacent = torch.max(delta_rows, delta_columns) == 1
    else:
        adjacent = delta_rows + delta_columns == 1
    positives = adjacent & (ids[:, None] == ids[None, :])  # (S, S); never the diagonal
    others = ~torch.eye(len(ids), dtype=torch.bool, device=ids.device)  # (S, S)
    has_positive = positives.any(dim=1)  # (S,)
    # Select rows first: a row of only -inf would give NaN gradients even if unused.
    log_kernel = log_kernel[has_positive]
    numerator = log_kernel.masked_fill(~positives[has_positive], float('-inf')).logsumexp(1)
    denominator = log_kernel.masked_fill(~others[has_positive], float('-inf')).logsumexp(1)
    return denominator - numerator


def contextual_loss(proto: Tensor, instance_masks: Sequence[Tensor], *, num_samples: int = 1024,
                    bandwidth: float = 0.1, neighbourhood: int = 8) -> Tensor:
    """Mean contextual term over the batch (see the module docstring).

    Args:
        proto: ``Tensor[N, Hp, Wp, M]`` prototypes; the embedding of a pixel is ``proto[n, y, x]``.
        instance_masks: ``N`` tensors ``[G_n, Hp, Wp]`` of binary ground-truth masks at
            prototype resolution.
        num_samples: pixels drawn per image at most.
        bandwidth: kernel bandwidth ``h``.
        neighbourhood: 4 or 8 (adjacency of same-instance pixels).

    Returns:
        Scalar tensor (0 with a gradient path when no pixel qualifies).
    """
    if proto.ndim != 4:
        raise ValueError(f'expected proto [N, Hp, Wp, M], got {tuple(proto.shape)}')
    if len(instance_masks) != proto.shape[0]:
        raise ValueError(f'{proto.shape[0]} images but {len(instance_masks)} mask tensors')
    if num_samples < 1:
        raise ValueError(f'num_samples must be >= 1, got {num_samples}')
    _, height, width, channels = proto.shape
    terms: List[Tensor] = []
    for image_proto, masks in zip(proto, instance_masks):
        if masks.shape[1:] != (height, width):
            raise ValueError(f'expected masks [G, {height}, {width}] at prototype resolution, '
                             f'got {tuple(masks.shape)}')
        ids = instance_ids(masks)  # (Hp, Wp)
        flat = sample_pixels(ids, num_samples)  # (S,)
        if flat.numel() < 2:
            continue
        embeddings = image_proto.reshape(-1, channels)[flat]  # (Hp*Wp, M) -> (S, M)
        terms.append(contextual_terms(
            embeddings, flat // width, flat % width, ids.reshape(-1)[flat],
            bandwidth=bandwidth, neighbourhood=neighbourhood))
    all_terms = torch.cat(terms) if terms else proto.new_zeros(0)
    if all_terms.numel() == 0:
        return proto.sum() * 0.0
    return all_terms.mean()
