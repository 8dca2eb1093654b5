"""Turn raw network outputs into detections: Fast NMS, then masks at the source resolution."""

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn, Tensor
import torch.nn.functional as F
from torchvision.ops import roi_align

from yolact_ros.config import PostprocessConfig
from yolact_ros.ops import assemble_masks, decode_boxes, fast_nms, sanitize_coordinates
from yolact_ros.structures import WindowedMasks


@dataclass(frozen=True)
class MaskWindows:
    """Binary masks of some detections over equal-sized windows of the image.

    Attributes:
        indices: ``Tensor[G]`` the detections (rows of ``soft_masks``) these windows belong to,
            on the CPU (the host decided them).
        origins: ``Tensor[G, 2]`` (y, x) pixel of each window's top-left corner, on the CPU.
        masks: ``Tensor[G, h, w]`` bool, on the masks' device; every set pixel of a
            detection's full-size mask lies inside its window.
    """

    indices: Tensor
    origins: Tensor
    masks: Tensor


def _window_extent(occupied: Tensor, target: int, source_extent: float) -> Tensor:
    """Output pixels ``[lo, hi)`` whose bilinear taps can reach an occupied source pixel.

    Args:
        occupied: ``Tensor[D, n]`` bool, source rows (or columns) holding a value above the
            threshold.
        target: output size along that axis.
        source_extent: source pixels (``<= n``, fractional with a letterbox) that the
            ``target`` output pixels span.

    Returns:
        ``Tensor[D, 2]`` int64; ``lo == hi`` where nothing is occupied.
    """
    size = occupied.shape[1]
    index = torch.arange(size, device=occupied.device)
    first = torch.where(occupied, index, size).amin(dim=1).double()
    last = torch.where(occupied, index, -1).amax(dim=1).double()
    scale = source_extent / target  # source pixels per output pixel (F.interpolate's scale)
    # Output x samples source (x + 0.5) * scale - 0.5 between taps floor() and floor() + 1: it
    # can exceed the threshold only if a tap is occupied, i.e. for source in (first - 1,
    # last + 1). One pixel of slack on each side absorbs rounding.
    low = torch.floor((first - 0.5) / scale - 0.5).clamp(0, target)
    high = (torch.ceil((last + 1.5) / scale - 0.5) + 1).clamp(0, target)
    extent = torch.stack((low, high), dim=1).long()  # (D, 2)
    return torch.where((last >= 0)[:, None], extent, torch.zeros_like(extent))


def mask_windows(soft_masks: Tensor, image_size: Tuple[int, int], threshold: float,
                 content: Tuple[float, float] = (1.0, 1.0)) -> List[MaskWindows]:
    """Threshold masks upsampled to ``image_size``, computing only the windows they can occupy.

    Equal, to float rounding, to thresholding ``F.interpolate(soft_masks, image_size,
    'bilinear', align_corners=False)``: ``roi_align(aligned=True, sampling_ratio=1)`` samples
    each output pixel at the same source point, ``(x + 0.5) * Wp / W - 0.5``, with the same
    border clamping, and an output pixel above the threshold needs a source tap above it, so
    pixels outside the windows are below it. Detections are grouped by window area (within a
    factor of 2), one ``roi_align`` call per group, so the work is at most twice the windows'.

    Args:
        soft_masks: ``Tensor[D, Hp, Wp]`` soft masks at prototype resolution.
        image_size: output ``(H, W)``.
        threshold: a pixel is set where the upsampled value is above this.
        content: the fractions ``(h, w)`` of the prototype grid, from its top-left corner,
            that hold the image (a letterboxed input; ``(1, 1)`` when squashed); only that part
            is upsampled to ``image_size``.

    Returns:
        One :class:`MaskWindows` per group; detections whose masks are empty are in none.
    """
    height, width = image_size
    proto_h, proto_w = soft_masks.shape[1] * content[0], soft_masks.shape[2] * content[1]
    # (D, Hp, Wp) -> (D, 1, Hp, Wp), contiguous once: roi_align would copy it on every call.
    sources = soft_masks[:, None].float().contiguous()
    # A row holds a pixel above the threshold iff its maximum is (a float max is far faster
    # than a bool any() on the CPU).
    rows = _window_extent(sources[:, 0].amax(dim=2) > threshold, height, proto_h)  # (D, 2)
    cols = _window_extent(sources[:, 0].amax(dim=1) > threshold, width, proto_w)  # (D, 2)
    # The one device -> host copy of this stage: window sizes decide the output shapes.
    extents = torch.cat((rows, cols), dim=1).tolist()  # D x [y_lo, y_hi, x_lo, x_hi]
    groups: Dict[int, List[int]] = {}
    for index, (y_lo, y_hi, x_lo, x_hi) in enumerate(extents):
        area = (y_hi - y_lo) * (x_hi - x_lo)
        if area > 0:
            groups.setdefault(area.bit_length(), []).append(index)
    scale_y, scale_x = proto_h / height, proto_w / width
    results = []
    for members in groups.values():
        win_h = max(extents[i][1] - extents[i][0] for i in members)
        win_w = max(extents[i][3] - extents[i][2] for i in members)
        # Shift windows that would cross the bottom/right edge back inside the image; they
        # still cover their detection's extent.
        origins = [(min(extents[i][0], height - win_h), min(extents[i][2], width - win_w))
                   for i in members]
        # roi_align boxes in source pixels: batch index, x1, y1, x2, y2 -> (G, 5)
        boxes = torch.tensor([[i, x * scale_x, y * scale_y, (x + win_w) * scale_x,
                               (y + win_h) * scale_y] for i, (y, x) in zip(members, origins)],
                             dtype=torch.float32, device=soft_masks.device)
        windows = roi_align(sources, boxes, output_size=(win_h, win_w), spatial_scale=1.0,
                            sampling_ratio=1, aligned=True)  # (G, 1, h, w)
        results.append(MaskWindows(indices=torch.tensor(members),
                                   origins=torch.tensor(origins).view(-1, 2),
                                   masks=windows[:, 0] > threshold))
    return results


def paste_masks(windows: List[MaskWindows], num_masks: int,
                image_size: Tuple[int, int]) -> Tensor:
    """Return ``Tensor[D, H, W]`` bool, each detection's window pasted into an empty image."""
    height, width = image_size
    device = windows[0].masks.device if windows else torch.device('cpu')
    masks = torch.zeros((num_masks, height, width), dtype=torch.bool, device=device)
    for group in windows:
        _, win_h, win_w = group.masks.shape
        origins, indices = group.origins.to(device), group.indices.to(device)
        rows = origins[:, 0, None, None] + torch.arange(win_h, device=device)[:, None]
        cols = origins[:, 1, None, None] + torch.arange(win_w, device=device)
        # index (G, 1, 1), rows (G, h, 1), cols (G, 1, w) broadcast to the windows' (G, h, w)
        masks[indices[:, None, None], rows, cols] = group.masks
    return masks


def to_windowed_masks(windows: List[MaskWindows], num_masks: int,
                      image_size: Tuple[int, int]) -> WindowedMasks:
    """Copy the windows to the host: one :class:`WindowedMasks` for ``num_masks`` detections.

    Only the windows travel (not ``bool[D, H, W]``); detections in no group get a ``0 x 0``
    window (their masks are empty).
    """
    origins = np.zeros((num_masks, 2), np.int64)
    host_windows = [np.zeros((0, 0), bool)] * num_masks
    if not windows:
        return WindowedMasks(tuple(image_size), origins, tuple(host_windows))
    # Every group's masks in one copy (one device sync, not one per group).
    flat = torch.cat([group.masks.reshape(-1) for group in windows]).cpu().numpy()
    start = 0
    for group in windows:
        count, win_h, win_w = group.masks.shape
        masks = flat[start:start + count * win_h * win_w].reshape(count, win_h, win_w)
        start += masks.size
        indices = group.indices.numpy()
        origins[indices] = group.origins.numpy()
        for member, index in enumerate(indices):
            host_windows[index] = masks[member]
    return WindowedMasks(tuple(image_size), origins, tuple(host_windows))


def _inside_content(detections: Dict[str, Tensor],
                    content: Tuple[float, float]) -> Dict[str, Tensor]:
    """Drop detections whose box starts in a letterbox's padding: they cover no image pixel."""
    boxes = detections['box']  # (D, 4) relative to the input
    keep = (boxes[:, 0] < content[1]) & (boxes[:, 1] < content[0])
    return {key: value if key == 'proto' else value[keep] for key, value in detections.items()}


class Postprocessor:
    """Upstream's ``Detect`` + ``postprocess`` with every threshold configurable.

    Per image: keep priors whose best (allowed) foreground score exceeds
    ``candidate_threshold``, Fast NMS per class, keep detections scoring above
    ``score_threshold`` (see :class:`~yolact_ros.config.PostprocessConfig`), then boxes to
    pixels and masks assembled in prototype space, upsampled bilinearly straight to the source
    size (computed over each mask's window only: :func:`mask_windows`) and thresholded.

    With a ``mask_scorer`` (YOLACT++'s ``maskiou_net``) each detection also gets a mask score:
    its box score times the IoU the scorer predicts for its cropped soft mask (prototype
    resolution, before upsampling) at its class, not clamped, as upstream's COCO export scores
    masks. Detections stay ordered by box score.
    """

    def __init__(self, config: PostprocessConfig, *, mask_scorer: Optional[nn.Module] = None,
                 full_upsample: bool = False) -> None:
        """Keep the thresholds; ``full_upsample`` upsamples masks over the whole image.

        That is upstream's way and the reference :func:`mask_windows` equals (slower); by
        default each mask is upsampled over its window only.
        """
        self.config = config
        self.mask_scorer = mask_scorer
        self.full_upsample = full_upsample

    def detect(self, outputs: Dict[str, Tensor]) -> List[Dict[str, Tensor]]:
        """Fast NMS for each image of a batch, then the final score threshold.

        Returns:
            Per image: ``box`` ``Tensor[D, 4]`` relative x1y1x2y2, ``coef`` ``Tensor[D, M]``,
            ``class`` ``Tensor[D]`` (0-based foreground), ``score`` ``Tensor[D]``, ``proto``
            ``Tensor[Hp, Wp, M]``; every score above ``score_threshold``.
        """
        config = self.config
        scores_all = F.softmax(outputs['conf'], dim=-1)  # (N, P, K+1)
        boxes_all = decode_boxes(outputs['loc'], outputs['priors'])  # (N, P, 4)
        allowed = self._allowed_classes(scores_all.shape[-1] - 1, scores_all.device)
        results = []
        for index in range(scores_all.shape[0]):
            scores = scores_all[index, :, 1:].t()  # (P, K+1) -> (K, P), background dropped
            if allowed is not None:
                scores = scores[allowed]  # (K, P) -> (K', P): others never become candidates
            best, _ = scores.max(dim=0)
            keep = best > config.candidate_threshold
            boxes, coef, classes, kept_scores = fast_nms(
                boxes_all[index][keep], outputs['mask_coef'][index][keep], scores[:, keep],
                iou_threshold=config.nms_iou, top_k=config.top_k,
                max_detections=config.max_detections)
            if allowed is not None:
                classes = allowed[classes]  # rows of the allowed classes -> class indices
            final = kept_scores > config.score_threshold  # (D,), scores descending
            results.append({'box': boxes[final], 'coef': coef[final], 'class': classes[final],
                            'score': kept_scores[final], 'proto': outputs['proto'][index]})
        return results

    def _allowed_classes(self, num_classes: int, device: torch.device) -> Optional[Tensor]:
        """Return ``Tensor[K']`` the allow-list's class indices, or None for every class."""
        if not self.config.classes:
            return None
        unknown = [c for c in self.config.classes if c >= num_classes]
        if unknown:
            raise ValueError(f'classes {unknown} out of range: the model has {num_classes} '
                             'classes')
        return torch.tensor(sorted(set(self.config.classes)), device=device)

    def to_image(self, detections: Dict[str, Tensor], image_size: Tuple[int, int],
                 content: Tuple[float, float] = (1.0, 1.0)) -> Dict[str, Tensor]:
        """Scale one image's detections to pixels and build its masks.

        Args:
            detections: one entry of :meth:`detect`.
            image_size: source ``(H, W)``.
            content: the input's fractions ``(h, w)`` holding the image (see
                :meth:`~yolact_ros.preprocess.Preprocessor.content_fractions`).

        Returns:
            ``boxes`` ``Tensor[D, 4]`` integer pixels, ``scores``, ``classes`` and
            ``mask_windows``, the masks as :class:`MaskWindows` groups (:func:`paste_masks`
            makes ``Tensor[D, H, W]`` of them, :func:`to_windowed_masks` copies them to the
            host); with a mask scorer also ``mask_iou`` and ``mask_scores`` ``Tensor[D]``.
        """
        height, width = image_size
        if content != (1.0, 1.0):
            detections = _inside_content(detections, content)
        boxes = detections['box']
        mask_iou = detections['score'].new_zeros((0,))
        windows = []
        if boxes.shape[0] > 0:
            soft_masks = assemble_masks(detections['proto'], detections['coef'], boxes)
            if self.mask_scorer is not None:
                mask_iou = self.predict_mask_iou(soft_masks, detections['class'])
            if self.full_upsample:
                # (D, Hp, Wp) -> (1, D, H', W') -> (D, H, W): bilinear straight to the source
                # size (as upstream), the letterbox's padding cut off.
                padded = (round(height / content[0]), round(width / content[1]))
                masks = F.interpolate(soft_masks[None].float(), size=padded, mode='bilinear',
                                      align_corners=False)[0, :, :height, :width]
                # One group, every window the whole image.
                windows = [MaskWindows(indices=torch.arange(boxes.shape[0]),
                                       origins=torch.zeros((boxes.shape[0], 2),
                                                           dtype=torch.long),
                                       masks=masks > self.config.mask_threshold)]
            else:
                windows = mask_windows(soft_masks, image_size, self.config.mask_threshold,
                                       content)
        if content != (1.0, 1.0):  # letterbox: input -> image relative (no work when squashed)
            boxes = boxes / boxes.new_tensor((content[1], content[0]) * 2)
        x1, x2 = sanitize_coordinates(boxes[:, 0], boxes[:, 2], width)
        y1, y2 = sanitize_coordinates(boxes[:, 1], boxes[:, 3], height)
        pixel_boxes = torch.stack((x1, y1, x2, y2), dim=1).long()  # truncation, as upstream
        result = {'boxes': pixel_boxes, 'scores': detections['score'],
                  'classes': detections['class'], 'mask_windows': windows}
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

    def __call__(self, outputs: Dict[str, Tensor], image_sizes: Sequence[Tuple[int, int]],
                 contents: Optional[Sequence[Tuple[float, float]]] = None
                 ) -> List[Dict[str, Tensor]]:
        """Run :meth:`detect` and :meth:`to_image` for a batch with these source sizes."""
        contents = contents or [(1.0, 1.0)] * len(image_sizes)
        return [self.to_image(detections, size, content) for detections, size, content
                in zip(self.detect(outputs), image_sizes, contents)]
