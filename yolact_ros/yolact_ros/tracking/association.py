"""Costs between tracks and detections (box and mask IoU) and their optimal assignment."""

import math
from typing import NamedTuple, Optional, Sequence, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """Return the ``float64[T, D]`` IoU of ``float[T, 4]`` and ``float[D, 4]`` x1y1x2y2 boxes."""
    a = np.asarray(boxes1, np.float64).reshape(-1, 4)
    b = np.asarray(boxes2, np.float64).reshape(-1, 4)
    # One (T, D) array per coordinate: 3x faster than (T, D, 2) corners at 50 x 50.
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.maximum(width, 0.0) * np.maximum(height, 0.0)  # (T, D)
    area1 = np.maximum(a[:, 2] - a[:, 0], 0.0) * np.maximum(a[:, 3] - a[:, 1], 0.0)
    area2 = np.maximum(b[:, 2] - b[:, 0], 0.0) * np.maximum(b[:, 3] - b[:, 1], 0.0)
    union = area1[:, None] + area2[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def window_iou(window_a: np.ndarray, origin_a: Sequence[int], area_a: int,
               window_b: np.ndarray, origin_b: Sequence[int], area_b: int) -> float:
    """Return the IoU of two masks given as ``bool[h, w]`` windows at (y, x) origins.

    Only the windows' intersection is scanned; ``area_a`` and ``area_b`` are the masks' pixel
    counts. Origins may lie outside any image (a track's window moved by its prediction).
    """
    top_a, left_a = origin_a
    top_b, left_b = origin_b
    top, left = max(top_a, top_b), max(left_a, left_b)
    bottom = min(top_a + window_a.shape[0], top_b + window_b.shape[0])
    right = min(left_a + window_a.shape[1], left_b + window_b.shape[1])
    inter = 0
    if bottom > top and right > left:
        inter = int(np.count_nonzero(
            window_a[top - top_a:bottom - top_a, left - left_a:right - left_a]
            & window_b[top - top_b:bottom - top_b, left - left_b:right - left_b]))
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


class MaskSet(NamedTuple):
    """``N`` masks as windows, with what the cost needs of them.

    Attributes:
        windows: ``N`` ``bool[h, w]`` windows.
        origins: ``int64[N, 2]`` (y, x) of each window's top-left pixel (anywhere, even outside
            an image).
        sizes: ``int64[N, 2]`` (h, w) of each window.
        areas: ``int64[N]`` pixel count of each mask.
    """

    windows: Sequence[np.ndarray]
    origins: np.ndarray
    sizes: np.ndarray
    areas: np.ndarray

    @classmethod
    def from_windows(cls, windows: Sequence[np.ndarray], origins: np.ndarray) -> 'MaskSet':
        """Measure ``N`` windows at ``int[N, 2]`` (y, x) origins."""
        sizes = np.array([w.shape for w in windows], np.int64).reshape(-1, 2)
        areas = np.array([np.count_nonzero(w) for w in windows], np.int64)
        return cls(windows, np.asarray(origins, np.int64).reshape(-1, 2), sizes, areas)

    def take(self, indices: np.ndarray) -> 'MaskSet':
        """Return the masks at ``int[K]`` ``indices``."""
        return MaskSet([self.windows[i] for i in indices.tolist()], self.origins[indices],
                       self.sizes[indices], self.areas[indices])


def match_cost(track_boxes: np.ndarray, detection_boxes: np.ndarray, *,
               allowed: Optional[np.ndarray] = None, mask_weight: float = 0.0,
               track_masks: Optional[MaskSet] = None,
               detection_masks: Optional[MaskSet] = None,
               threshold: float = math.inf, skip_unambiguous: bool = False) -> np.ndarray:
    """Return the ``float64[T, D]`` cost ``1 - ((1 - w) * IoU_box + w * IoU_mask)``.

    Pairs whose boxes do not overlap, that ``allowed`` forbids, or that cannot cost
    ``<= threshold`` whatever their mask IoU (bounded by the masks' pixel counts and their
    windows' overlap) cost ``inf``; the mask IoU is computed for the remaining pairs only, and
    where either mask is empty the box IoU stands in for it.

    Args:
        track_boxes: ``float[T, 4]`` x1y1x2y2 (predicted) track boxes.
        detection_boxes: ``float[D, 4]`` x1y1x2y2 detection boxes.
        allowed: ``bool[T, D]`` pairs that may match (e.g. same class), or ``None`` for all.
        mask_weight: ``w``, in [0, 1]; ``0`` ignores the masks (box IoU only).
        track_masks: the ``T`` tracks' masks; needed when ``mask_weight > 0``.
        detection_masks: the ``D`` detections' masks; needed when ``mask_weight > 0``.
        threshold: the cost above which a pair will be rejected anyway.
        skip_unambiguous: a pair that is the only possible one of its row and of its column,
            and that costs ``<= threshold`` whatever its mask IoU, is matched by any assignment:
            it gets the cost of its box IoU alone, its mask IoU not computed.
    """
    iou = box_iou(track_boxes, detection_boxes)  # (T, D)
    candidate = iou > 0
    if allowed is not None:
        candidate &= allowed
    rows, cols = np.nonzero(candidate)  # P candidate pairs
    pair_iou = iou[rows, cols]
    if mask_weight > 0.0 and len(rows):
        track_origin, detection_origin = track_masks.origins[rows], detection_masks.origins[cols]
        overlap = np.minimum(track_origin + track_masks.sizes[rows],
                             detection_origin + detection_masks.sizes[cols]) \
            - np.maximum(track_origin, detection_origin)  # (P, 2)
        track_area, detection_area = track_masks.areas[rows], detection_masks.areas[cols]
        most_inter = np.minimum(np.minimum(track_area, detection_area),
                                np.prod(np.clip(overlap, 0, None), axis=1))
        most_union = track_area + detection_area - most_inter
        empty = (track_area == 0) | (detection_area == 0)
        mask_iou = np.where(empty, pair_iou, most_inter / np.maximum(most_union, 1))  # bound
        possible = 1.0 - ((1.0 - mask_weight) * pair_iou + mask_weight * mask_iou) \
            <= threshold + 1e-9
        compute = possible & ~empty
        if skip_unambiguous:
            alone = (np.bincount(rows[possible], minlength=iou.shape[0])[rows] == 1) \
                & (np.bincount(cols[possible], minlength=iou.shape[1])[cols] == 1)
            sure = possible & alone & (1.0 - (1.0 - mask_weight) * pair_iou <= threshold)
            mask_iou[sure] = pair_iou[sure]
            compute &= ~sure
        track_origins, detection_origins = track_origin.tolist(), detection_origin.tolist()
        track_areas, detection_areas = track_area.tolist(), detection_area.tolist()
        pair_rows, pair_cols = rows.tolist(), cols.tolist()
        for k in np.flatnonzero(compute).tolist():
            mask_iou[k] = window_iou(
                track_masks.windows[pair_rows[k]], track_origins[k], track_areas[k],
                detection_masks.windows[pair_cols[k]], detection_origins[k], detection_areas[k])
        pair_iou = np.where(possible, (1.0 - mask_weight) * pair_iou + mask_weight * mask_iou,
                            -math.inf)
    cost = np.full(iou.shape, np.inf)
    cost[rows, cols] = 1.0 - pair_iou
    return cost


def assign(cost: np.ndarray, threshold: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Match rows to columns of ``float[T, D]`` ``cost``, never through a pair above threshold.

    Among the assignments of pairs costing ``<= threshold``, the one with the most pairs and,
    among those, the least total cost (``scipy.optimize.linear_sum_assignment``).

    Returns:
        ``int64[K, 2]`` matched (row, column) pairs in row order, ``int64`` unmatched rows and
        ``int64`` unmatched columns, both ascending.
    """
    valid = cost <= threshold
    rows = np.flatnonzero(valid.any(axis=1))
    cols = np.flatnonzero(valid.any(axis=0))
    matches = np.zeros((0, 2), np.int64)
    if len(rows):
        sub_valid = valid[np.ix_(rows, cols)]
        # A forbidden pair costs more than any set of allowed ones: the most pairs come first.
        sub_cost = np.where(sub_valid, cost[np.ix_(rows, cols)], float(min(sub_valid.shape) + 1))
        picked_rows, picked_cols = linear_sum_assignment(sub_cost)
        keep = sub_valid[picked_rows, picked_cols]
        matches = np.stack([rows[picked_rows[keep]], cols[picked_cols[keep]]], axis=1)
    matched_rows = np.zeros(cost.shape[0], bool)
    matched_rows[matches[:, 0]] = True
    matched_cols = np.zeros(cost.shape[1], bool)
    matched_cols[matches[:, 1]] = True
    return (matches.astype(np.int64), np.flatnonzero(~matched_rows),
            np.flatnonzero(~matched_cols))


def duplicates(boxes: np.ndarray, scores: np.ndarray, threshold: float,
               masks: Optional[MaskSet] = None) -> np.ndarray:
    """Return ``bool[D]``: detections overlapping a higher-scoring kept one by IoU > threshold.

    Class-agnostic, greedy by descending score (a detection marked a duplicate suppresses
    nothing). The overlap is the masks' IoU when ``masks`` are given (computed only for boxes
    that overlap), else the boxes' IoU. Fast NMS works per class and on boxes, so one object can
    come out twice, under two classes or as a part of it: these are the copies.

    Args:
        boxes: ``float[D, 4]`` x1y1x2y2.
        scores: ``float[D]``.
        threshold: IoU above which the lower-scoring detection is a duplicate.
        masks: the ``D`` detections' masks, or ``None`` to compare boxes.
    """
    order = np.argsort(-np.asarray(scores), kind='stable')
    iou = box_iou(boxes[order], boxes[order])  # (D, D), by descending score
    # Candidate pairs (j above i in score): boxes overlapping (by masks) or above threshold.
    candidate = np.triu(iou > (0.0 if masks is not None else threshold), k=1)
    if masks is not None and candidate.any():
        rows, cols = np.nonzero(candidate)
        a, b = order[rows], order[cols]
        ends_a, ends_b = masks.origins[a] + masks.sizes[a], masks.origins[b] + masks.sizes[b]
        overlap = np.minimum(ends_a, ends_b) \
            - np.maximum(masks.origins[a], masks.origins[b])  # (P, 2) windows' overlap h, w
        most_inter = np.minimum(np.minimum(masks.areas[a], masks.areas[b]),
                                np.prod(np.clip(overlap, 0, None), axis=1))
        most_iou = most_inter / np.maximum(masks.areas[a] + masks.areas[b] - most_inter, 1)
        candidate[rows, cols] = most_iou > threshold  # pairs that cannot exceed it are out
    duplicate = np.zeros(len(order), bool)
    for i in np.flatnonzero(candidate.any(axis=0)).tolist():
        for j in np.flatnonzero(candidate[:, i] & ~duplicate).tolist():
            a, b = int(order[j]), int(order[i])
            if masks is None or window_iou(
                    masks.windows[a], masks.origins[a], int(masks.areas[a]),
                    masks.windows[b], masks.origins[b], int(masks.areas[b])) > threshold:
                duplicate[i] = True
                break
    result = np.zeros(len(order), bool)
    result[order] = duplicate
    return result
