"""Multi-object tracking metrics of mask tracks: MOTA, IDF1, id switches and HOTA.

The metrics come from maintained libraries: ``motmetrics`` (MOTA, IDF1, id switches; a ground
truth and a tracked object match when their masks' IoU is at least ``iou_threshold``) and
``trackeval`` (HOTA, averaged over IoU thresholds 0.05 ... 0.95, as the MOTS benchmarks).
Objects are compared by the IoU of their masks (MOTS), computed with pycocotools on RLEs.
Ground-truth objects can be marked ignored (as KITTI's DontCare or MOTChallenge's distractors):
they are no misses, and a tracked object matched to one (IoU >= ``iou_threshold``, one-to-one)
is dropped rather than counted as a false positive.
"""

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np


@dataclass(frozen=True)
class MotFrame:
    """The objects of one frame: ground truth, or a tracker's output.

    Attributes:
        ids: ``int64[N]`` track ids (ground truth or tracker; only equality within a sequence
            matters).
        masks: ``N`` COCO RLE masks (``size`` and ``counts``) of the objects, same image size.
        ignored: ``bool[N]`` objects to ignore (ground truth only), or None for none.
    """

    ids: np.ndarray
    masks: List[dict]
    ignored: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        ids = np.asarray(self.ids, np.int64).reshape(-1)
        if len(ids) != len(self.masks):
            raise ValueError(f'expected one mask per id, got {len(ids)} ids and '
                             f'{len(self.masks)} masks')
        object.__setattr__(self, 'ids', ids)
        if self.ignored is not None:
            ignored = np.asarray(self.ignored, bool).reshape(-1)
            if len(ignored) != len(ids):
                raise ValueError(f'expected ignored [{len(ids)}], got {len(ignored)}')
            object.__setattr__(self, 'ignored', ignored)


@dataclass(frozen=True)
class MotScores:
    """Tracking scores of one sequence (or of several, accumulated).

    Attributes:
        hota: HOTA (``None`` when ``trackeval`` is not installed).
        idf1: identity F1 (motmetrics).
        mota: multi-object tracking accuracy (motmetrics).
        id_switches: ground-truth objects whose matched track id changed (motmetrics).
        false_positives: tracked objects matching no ground truth.
        misses: ground-truth objects matched by no tracked object.
        frames: frames evaluated.
        objects: ground-truth objects over all frames.
    """

    hota: Optional[float]
    idf1: float
    mota: float
    id_switches: int
    false_positives: int
    misses: int
    frames: int
    objects: int


def mask_ious(gt: MotFrame, tracked: MotFrame) -> np.ndarray:
    """Return ``float64[G, T]`` mask IoUs of the frame's ground truth and tracked objects."""
    from pycocotools import mask as mask_util

    if not len(gt.ids) or not len(tracked.ids):
        return np.zeros((len(gt.ids), len(tracked.ids)))
    ious = mask_util.iou(list(tracked.masks), list(gt.masks), [0] * len(gt.ids))  # (T, G)
    return np.asarray(ious, np.float64).reshape(len(tracked.ids), len(gt.ids)).T


def evaluate_mot(gt: Sequence[MotFrame], tracked: Sequence[MotFrame], *,
                 iou_threshold: float = 0.5, sequence_ious: Optional[List[np.ndarray]] = None
                 ) -> MotScores:
    """Score a tracker's output against the ground truth of one sequence.

    Args:
        gt: the ground truth of each frame.
        tracked: the tracker's objects of the same frames (tracked ones only: id > 0).
        iou_threshold: least mask IoU of a match for MOTA, IDF1 and id switches.
        sequence_ious: each frame's ``float[G, T]`` IoUs, when already computed.

    Returns:
        The scores.
    """
    import motmetrics

    if len(gt) != len(tracked):
        raise ValueError(f'expected as many tracked frames as ground-truth frames, got '
                         f'{len(tracked)} and {len(gt)}')
    if not 0 < iou_threshold <= 1:
        raise ValueError(f'iou_threshold must be in (0, 1], got {iou_threshold}')
    ious = sequence_ious or [mask_ious(g, t) for g, t in zip(gt, tracked)]
    kept = [drop_ignored(g, t, iou, iou_threshold) for g, t, iou in zip(gt, tracked, ious)]
    gt, tracked, ious = (list(column) for column in zip(*kept)) if kept else ([], [], [])
    accumulator = motmetrics.MOTAccumulator(auto_id=True)
    for truth, output, iou in zip(gt, tracked, ious):
        distances = np.where(iou >= iou_threshold, 1.0 - iou, np.nan)  # (G, T)
        accumulator.update(truth.ids.tolist(), output.ids.tolist(), distances)
    names = ['idf1', 'mota', 'num_switches', 'num_false_positives', 'num_misses',
             'num_objects']
    row = motmetrics.metrics.create().compute(accumulator, metrics=names, name='sequence')
    values = {name: row[name].iloc[0] for name in names}
    return MotScores(
        hota=hota(gt, tracked, ious), idf1=float(values['idf1']), mota=float(values['mota']),
        id_switches=int(values['num_switches']),
        false_positives=int(values['num_false_positives']), misses=int(values['num_misses']),
        frames=len(gt), objects=int(values['num_objects']))


def drop_ignored(gt: MotFrame, tracked: MotFrame, ious: np.ndarray, iou_threshold: float
                 ) -> Tuple[MotFrame, MotFrame, np.ndarray]:
    """Remove a frame's ignored ground truth and the tracked objects matched to it.

    Ground truth and tracked objects are matched one-to-one (Hungarian, on ``float[G, T]``
    ``ious``, pairs under ``iou_threshold`` excluded) before the removal, as trackeval's
    MOTChallenge preprocessing does with distractors.
    """
    from scipy.optimize import linear_sum_assignment

    if gt.ignored is None or not gt.ignored.any():
        return gt, tracked, ious
    drop = np.zeros(len(tracked.ids), bool)
    if ious.size:
        score = np.where(ious >= iou_threshold, ious, 0.0)
        rows, cols = linear_sum_assignment(-score)
        matched = score[rows, cols] > 0
        drop[cols[matched & gt.ignored[rows]]] = True
    keep_gt, keep_tracked = np.flatnonzero(~gt.ignored), np.flatnonzero(~drop)
    return (MotFrame(gt.ids[keep_gt], [gt.masks[i] for i in keep_gt]),
            MotFrame(tracked.ids[keep_tracked], [tracked.masks[i] for i in keep_tracked]),
            ious[np.ix_(keep_gt, keep_tracked)])


def hota(gt: Sequence[MotFrame], tracked: Sequence[MotFrame],
         ious: Sequence[np.ndarray]) -> Optional[float]:
    """Return trackeval's HOTA of a sequence (``None`` if trackeval is not installed).

    ``ious``: each frame's ``float[G, T]`` mask IoUs.
    """
    try:
        from trackeval.metrics import HOTA
    except ImportError:
        return None
    gt_index = {v: i for i, v in enumerate(sorted({int(x) for f in gt for x in f.ids}))}
    tracked_index = {v: i for i, v in enumerate(sorted({int(x) for f in tracked for x in f.ids}))}
    data = {
        'num_timesteps': len(gt), 'num_gt_ids': len(gt_index),
        'num_tracker_ids': len(tracked_index),
        'num_gt_dets': sum(len(f.ids) for f in gt),
        'num_tracker_dets': sum(len(f.ids) for f in tracked),
        'gt_ids': [np.array([gt_index[int(x)] for x in f.ids], int) for f in gt],
        'tracker_ids': [np.array([tracked_index[int(x)] for x in f.ids], int)
                        for f in tracked],
        'similarity_scores': [np.asarray(iou, float) for iou in ious],
    }
    result = HOTA().eval_sequence(data)
    return float(np.mean(result['HOTA']))
