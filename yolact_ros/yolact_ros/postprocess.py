"""Turn raw network outputs into detections: Fast NMS, then masks at the source resolution."""

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn, Tensor
import torch.nn.functional as F

from yolact_ros.config import PostprocessConfig
from yolact_ros.ops import assemble_masks, decode_boxes, fast_nms, sanitize_coordinates


class Postprocessor:
    """Upstream's ``Detect`` + ``postprocess`` with every threshold configurable.

    Per image: keep priors whose best foreground score exceeds ``score_threshold``, Fast NMS per
    class, then boxes to pixels and masks assembled in prototype space, upsampled bilinearly
    straight to the source size and thresholded.

    With a ``mask_scorer`` (YOLACT++'s ``maskiou_net``) each detection also gets a mask score:
    its box score times the IoU the scorer predicts for its cropped soft mask (prototype
    resolution, before upsampling) at its class, not clamped, as upstream's COCO export scores
    masks. Detections stay ordered by box score.
    """

    def __init__(self, config: PostprocessConfig, *,
                 mask_scorer: Optional[nn.Module] = None) -> None:
        self.config = config
        self.mask_scorer = mask_scorer

    def detect(self, outputs: Dict[str, Tensor]) -> List[Dict[str, Tensor]]:
        """Fast NMS for each image of a batch.

        Returns:
            Per image: ``box`` ``Tensor[D, 4]`` relative x1y1x2y2, ``coef`` ``Tensor[D, M]``,
            ``class`` ``Tensor[D]`` (0-based foreground), ``score`` ``Tensor[D]``, ``proto``
            ``Tensor[Hp, Wp, M]``.
        """
        config = self.config
        scores_all = F.softmax(outputs['conf'], dim=-1)  # (N, P, K+1)
        boxes_all = decode_boxes(outputs['loc'], outputs['priors'])  # (N, P, 4)
        results = []
        for index in range(scores_all.shape[0]):
            scores = scores_all[index, :, 1:].t()  # (P, K+1) -> (K, P), background dropped
            best, _ = scores.max(dim=0)
            keep = best > config.score_threshold
            boxes, coef, classes, kept_scores = fast_nms(
                boxes_all[index][keep], outputs['mask_coef'][index][keep], scores[:, keep],
                iou_threshold=config.nms_iou, top_k=config.top_k,
                max_detections=config.max_detections)
            results.append({'box': boxes, 'coef': coef, 'class': classes,
                            'score': kept_scores, 'proto': outputs['proto'][index]})
        return results

    def to_image(self, detections: Dict[str, Tensor],
                 image_size: Tuple[int, int]) -> Dict[str, Tensor]:
        """Scale one image's detections to pixels and build its masks.

        Args:
            detections: one entry of :meth:`detect`.
            image_size: source ``(H, W)``.

        Returns:
            ``boxes`` ``Tensor[D, 4]`` integer pixels, ``scores``, ``classes`` and ``masks``
            ``Tensor[D, H, W]`` bool; with a mask scorer also ``mask_iou`` and ``mask_scores``
            ``Tensor[D]``.
        """
        height, width = image_size
        boxes = detections['box']
        mask_iou = detections['score'].new_zeros((0,))
        if boxes.shape[0] == 0:
            masks = torch.zeros((0, height, width), dtype=torch.bool, device=boxes.device)
        else:
            soft_masks = assemble_masks(detections['proto'], detections['coef'], boxes)
            if self.mask_scorer is not None:
                mask_iou = self.predict_mask_iou(soft_masks, detections['class'])
            # (D, Hp, Wp) -> (1, D, H, W): bilinear straight to the source size, as upstream.
            masks = F.interpolate(soft_masks[None].float(), size=(height, width),
                                  mode='bilinear', align_corners=False)[0]
            masks = masks > self.config.mask_threshold
        x1, x2 = sanitize_coordinates(boxes[:, 0], boxes[:, 2], width)
        y1, y2 = sanitize_coordinates(boxes[:, 1], boxes[:, 3], height)
        pixel_boxes = torch.stack((x1, y1, x2, y2), dim=1).long()  # truncation, as upstream
        result = {'boxes': pixel_boxes, 'scores': detections['score'],
                  'classes': detections['class'], 'masks': masks}
        if self.mask_scorer is not None:
            result['mask_iou'] = mask_iou
            result['mask_scores'] = detections['score'] * mask_iou
        return result

    def predict_mask_iou(self, soft_masks: Tensor, classes: Tensor) -> Tensor:
        """Predict each mask's IoU with its object at the detection's class.

        Args:
            soft_masks: ``Tensor[D, Hp, Wp]`` cropped sigmoid masks at prototype resolution.
            classes: ``Tensor[D]`` 0-based foreground classes.

        Returns:
            ``Tensor[D]`` float32.
        """
        dtype = next(self.mask_scorer.parameters()).dtype  # fp16 when the model runs in half
        with torch.no_grad():
            # (D, Hp, Wp) -> (D, 1, Hp, Wp) -> (D, K)
            ious = self.mask_scorer(soft_masks[:, None].to(dtype)).float()
        return ious.gather(1, classes[:, None]).squeeze(1)  # (D, K) -> (D, 1) -> (D,)

    def __call__(self, outputs: Dict[str, Tensor],
                 image_sizes: Sequence[Tuple[int, int]]) -> List[Dict[str, Tensor]]:
        """Run :meth:`detect` and :meth:`to_image` for a batch with these source sizes."""
        return [self.to_image(detections, size)
                for detections, size in zip(self.detect(outputs), image_sizes)]
