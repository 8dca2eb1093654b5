"""Tables and pictures of an :class:`~yolact_ros.evaluation.coco_eval.EvalResult`."""

from pathlib import Path
from typing import Dict, Union

import numpy as np

from yolact_ros.evaluation.coco_eval import EvalResult, METRIC_NAMES

# Curves drawn per IoU type: IoU .50, IoU .75 and the mean over IoU .50:.95.
CURVE_NAMES = ('IoU=.50', 'IoU=.75', 'IoU=.50:.95')


def _cell(value: float) -> str:
    """Format a metric in [0, 1]; COCOeval's ``-1`` (nothing to average) shows as ``-``."""
    return f'{value:6.3f}' if value >= 0 else f'{"-":>6}'


def format_metrics(result: EvalResult) -> str:
    """Return the box and mask AP table (values in [0, 1], ``-`` where undefined)."""
    lines = ['      ' + ' '.join(f'{name:>6}' for name in METRIC_NAMES)]
    for label, metrics in (('box', result.box), ('mask', result.mask)):
        lines.append(f'{label:<5} ' + ' '.join(_cell(metrics[name]) for name in METRIC_NAMES))
    return '\n'.join(lines)


def format_per_class_table(result: EvalResult) -> str:
    """Return one line per category: name, id, instances, box AP, mask AP."""
    width = max([len('class')] + [len(c.name) for c in result.per_class])
    lines = [f'{"class":<{width}} {"id":>4} {"inst":>6} {"box AP":>7} {"mask AP":>7}']
    for row in result.per_class:
        lines.append(f'{row.name:<{width}} {row.category_id:>4} {row.num_instances:>6} '
                     f' {_cell(row.box_ap)}  {_cell(row.mask_ap)}')
    return '\n'.join(lines)


def pr_curves(result: EvalResult) -> Dict[str, Dict[str, np.ndarray]]:
    """Return the precision-recall curves COCOeval accumulated, averaged over categories.

    Precision is interpolated (COCO's 101 recall points), for all areas and 100 detections per
    image, averaged over the categories that have ground truth.

    Returns:
        ``{'recall': float[R], 'box': {curve: float[R]}, 'mask': {curve: float[R]}}`` with the
        curves of :data:`CURVE_NAMES` (a curve is all ``nan`` without ground truth).
    """
    curves: Dict[str, Dict[str, np.ndarray]] = {}
    recall = np.asarray(result.box_eval.params.recThrs, np.float64)
    for label, evaluator in (('box', result.box_eval), ('mask', result.mask_eval)):
        params = evaluator.params
        area = params.areaRngLbl.index('all')
        max_dets = params.maxDets.index(100)
        # precision: [T, R, K, A, M] -> [T, R, K]
        precision = evaluator.eval['precision'][:, :, :, area, max_dets]
        defined = (precision > -1).all(axis=(0, 1))  # categories with ground truth
        per_iou = precision[:, :, defined].mean(axis=2) if defined.any() else np.full(
            precision.shape[:2], np.nan)  # [T, R]
        at_50 = int(np.argmin(np.abs(params.iouThrs - 0.5)))
        at_75 = int(np.argmin(np.abs(params.iouThrs - 0.75)))
        curves[label] = dict(zip(CURVE_NAMES, (per_iou[at_50], per_iou[at_75],
                                               per_iou.mean(axis=0))))
    return {'recall': recall, **curves}


def plot_pr_curves(result: EvalResult, path: Union[str, Path], *, title: str = '') -> Path:
    """Write a PNG of the box and mask precision-recall curves (see :func:`pr_curves`)."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    curves = pr_curves(result)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(1, 2, figsize=(10, 4.4), sharey=True)
    for axis, label, metrics in ((axes[0], 'box', result.box), (axes[1], 'mask', result.mask)):
        for name, values in curves[label].items():
            axis.plot(curves['recall'], values, label=name)
        axis.set_title(f'{label}: AP {metrics["AP"]:.3f}, AP50 {metrics["AP50"]:.3f}, '
                       f'AP75 {metrics["AP75"]:.3f}')
        axis.set_xlabel('recall')
        axis.set_xlim(0.0, 1.0)
        axis.set_ylim(0.0, 1.02)
        axis.grid(alpha=0.3)
        axis.legend(loc='lower left')
    axes[0].set_ylabel('precision (interpolated, mean over classes)')
    figure.suptitle(title or f'{len(result.image_ids)} images, {len(result.results)} detections')
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
