"""COCO evaluation (pycocotools COCOeval, box and mask) of a Segmenter or a results file."""

from yolact_ros.evaluation.coco_eval import (
    check_categories, ClassAP, EvalResult, EvalTiming, evaluate_results, evaluate_segmenter,
    match_image_ids, METRIC_NAMES, validate_results)
from yolact_ros.evaluation.report import (
    format_metrics, format_per_class_table, plot_pr_curves, pr_curves)

__all__ = [
    'ClassAP', 'EvalResult', 'EvalTiming', 'METRIC_NAMES', 'check_categories',
    'evaluate_results', 'evaluate_segmenter', 'format_metrics', 'format_per_class_table',
    'match_image_ids', 'plot_pr_curves', 'pr_curves', 'validate_results',
]
