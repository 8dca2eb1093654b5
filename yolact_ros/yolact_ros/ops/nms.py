"""Fast NMS (YOLACT, Bolya et al. 2019): class-wise suppression as one matrix operation."""

from typing import Tuple

import torch
from torch import Tensor

from yolact_ros.ops.boxes import pairwise_iou


def fast_nms(boxes: Tensor, coefficients: Tensor, scores: Tensor, *, iou_threshold: float,
             top_k: int, max_detections: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Suppress, per class, every box overlapping a higher-scored box of that class.

    Unlike greedy NMS, a box suppressed by a box that is itself suppressed stays suppressed;
    that is what makes it one matrix operation.

    Args:
        boxes: ``Tensor[P', 4]`` candidate boxes (x1, y1, x2, y2).
        coefficients: ``Tensor[P', M]`` mask coefficients of the candidates.
        scores: ``Tensor[K, P']`` per-class scores of the candidates.
        iou_threshold: keep a box when its IoU with every higher-scored box is ``<=`` this.
        top_k: candidates considered per class.
        max_detections: detections returned over all classes.

    Returns:
        ``(boxes [D, 4], coefficients [D, M], classes [D], scores [D])`` by descending score.
    """
    scores, order = scores.sort(dim=1, descending=True)  # (K, P')
    order = order[:, :top_k]
    scores = scores[:, :top_k]
    num_classes, num_candidates = order.shape
    # (K*top_k,) gather -> (K, top_k, 4) and (K, top_k, M)
    class_boxes = boxes[order.reshape(-1)].reshape(num_classes, num_candidates, 4)
    class_coefficients = coefficients[order.reshape(-1)].reshape(
        num_classes, num_candidates, coefficients.shape[1])

    if num_candidates == 0:
        return class_boxes[0], class_coefficients[0], order[0], scores[0]
    iou = pairwise_iou(class_boxes, class_boxes).triu_(diagonal=1)  # (K, top_k, top_k)
    max_iou, _ = iou.max(dim=1)  # (K, top_k): best overlap with a higher-scored box
    keep = max_iou <= iou_threshold

    classes = torch.arange(num_classes, device=boxes.device)[:, None].expand_as(keep)[keep]
    kept_scores, order = scores[keep].sort(dim=0, descending=True)
    order = order[:max_detections]
    return (class_boxes[keep][order], class_coefficients[keep][order], classes[order],
            kept_scores[:max_detections])
