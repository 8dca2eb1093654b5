"""COCO box and mask AP with pycocotools ``COCOeval``, exactly as a hand run would give them.

How results become the two evaluations (the convention of upstream's COCO export and of
detectron2):

- **bbox**: every result with a ``bbox`` is evaluated with its ``score``; its ``segmentation`` is
  left out, so the detection area is the box area.
- **segm**: every result with a ``segmentation`` (compressed RLE) is evaluated with its
  ``mask_score`` when present (YOLACT++), else its ``score``; its ``bbox`` is left out, so
  pycocotools takes the detection area from the mask (small / medium / large use mask areas).

Feeding ``loadRes`` entries that hold both a box and a mask would make the mask evaluation use
box areas; splitting them is what makes these numbers equal a hand run of COCOeval on separate
bbox and segm result lists.
"""

from collections import Counter
import contextlib
import copy
from dataclasses import dataclass
import io
import logging
import math
from pathlib import PurePosixPath
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

LOGGER = logging.getLogger(__name__)

# Names of COCOeval.stats[0:6] (AP averaged over IoU .50:.95, at .50, at .75, by area).
METRIC_NAMES = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl')


@dataclass(frozen=True)
class ClassAP:
    """AP of one category (IoU .50:.95, all areas, 100 detections), ``-1`` without instances."""

    category_id: int
    name: str
    box_ap: float
    mask_ap: float
    num_instances: int


@dataclass(frozen=True)
class EvalTiming:
    """Speed of the Segmenter during :func:`evaluate_segmenter`.

    Attributes:
        num_images: images segmented.
        segment_seconds: time inside ``segmenter(image)`` calls (pre, model, post).
        total_seconds: the whole loop (image reading, segmenting, COCO encoding).
        preprocess_ms, inference_ms, postprocess_ms: mean per image, from ``Detections.times``.
    """

    num_images: int
    segment_seconds: float
    total_seconds: float
    preprocess_ms: float
    inference_ms: float
    postprocess_ms: float

    @property
    def images_per_second(self) -> float:
        """Images per second of the Segmenter alone."""
        return self.num_images / self.segment_seconds if self.segment_seconds > 0 else math.inf

    @property
    def end_to_end_images_per_second(self) -> float:
        """Images per second including reading the files and encoding the results."""
        return self.num_images / self.total_seconds if self.total_seconds > 0 else math.inf


@dataclass
class EvalResult:
    """Box and mask AP of a set of COCO results.

    Attributes:
        box: ``METRIC_NAMES`` -> value in [0, 1] (``-1`` where COCOeval has nothing to average,
            e.g. APs without small objects), equal to ``box_eval.stats[:6]``.
        mask: the same for masks (``mask_eval.stats[:6]``).
        per_class: one :class:`ClassAP` per ground-truth category, in category-id order.
        results: the COCO results that were evaluated (image ids as in the ground truth).
        box_eval: the bbox ``COCOeval`` (``.eval['precision']`` is ``[T, R, K, A, M]``).
        mask_eval: the segm ``COCOeval``.
        image_ids: the images evaluated.
        timing: Segmenter speed (only from :func:`evaluate_segmenter`).
    """

    box: Dict[str, float]
    mask: Dict[str, float]
    per_class: List[ClassAP]
    results: List[dict]
    box_eval: object
    mask_eval: object
    image_ids: List[int]
    timing: Optional[EvalTiming] = None

    def to_dict(self) -> dict:
        """Return the metrics (not the results) as JSON-compatible values."""
        values = {
            'num_images': len(self.image_ids), 'num_results': len(self.results),
            'box': dict(self.box), 'mask': dict(self.mask),
            'per_class': [{'category_id': c.category_id, 'name': c.name, 'box_ap': c.box_ap,
                           'mask_ap': c.mask_ap, 'num_instances': c.num_instances}
                          for c in self.per_class],
        }
        if self.timing is not None:
            values['timing'] = {
                'images_per_second': self.timing.images_per_second,
                'end_to_end_images_per_second': self.timing.end_to_end_images_per_second,
                'preprocess_ms': self.timing.preprocess_ms,
                'inference_ms': self.timing.inference_ms,
                'postprocess_ms': self.timing.postprocess_ms,
            }
        return values


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(
        value)


def _result_problem(result: object, coco_gt) -> Optional[str]:
    """Return why one result cannot be evaluated against ``coco_gt``, or ``None``."""
    if not isinstance(result, dict):
        return f'expected an object, got {type(result).__name__}'
    missing = [key for key in ('image_id', 'category_id', 'score') if key not in result]
    if missing:
        return f'missing field(s) {missing}'
    image_id, category_id = result['image_id'], result['category_id']
    if image_id not in coco_gt.imgs:
        ids = sorted(coco_gt.imgs)
        known = f'{ids[0]}..{ids[-1]}' if ids else 'none'
        return (f'image_id {image_id!r} is not an image of the ground truth '
                f'({len(ids)} images, ids {known})')
    if category_id not in coco_gt.cats:
        return (f'category_id {category_id!r} is not a ground-truth category '
                f'(categories {sorted(coco_gt.cats)})')
    for key in ('score', 'mask_score'):
        if key in result and not _is_number(result[key]):
            return f'{key} must be a finite number, got {result[key]!r}'
    if 'bbox' not in result and 'segmentation' not in result:
        return 'has neither bbox nor segmentation'
    if 'bbox' in result:
        bbox = result['bbox']
        if (not isinstance(bbox, (list, tuple)) or len(bbox) != 4
                or not all(_is_number(v) for v in bbox) or bbox[2] < 0 or bbox[3] < 0):
            return f'bbox must be [x, y, w, h] with w, h >= 0, got {bbox!r}'
    if 'segmentation' in result:
        segm = result['segmentation']
        if not isinstance(segm, dict) or not isinstance(segm.get('counts'), (str, bytes)):
            return ('segmentation must be compressed RLE {"size": [h, w], "counts": str}, '
                    f'got {str(segm)[:80]}')
        image = coco_gt.imgs[image_id]
        expected = [int(image['height']), int(image['width'])]
        if list(segm.get('size', [])) != expected:
            return (f'segmentation size {segm.get("size")!r} is not the size of image '
                    f'{image_id} {expected}')
    return None


def validate_results(results: Sequence[dict], coco_gt) -> None:
    """Raise ``ValueError`` naming the first result that cannot be evaluated, and why.

    Checks that each result is an object with a ground-truth ``image_id`` and ``category_id``, a
    finite ``score`` and a ``bbox`` ``[x, y, w, h]`` and/or an RLE ``segmentation`` of its image's
    size.
    """
    if not isinstance(results, (list, tuple)):
        raise ValueError(f'results must be a list of objects, got {type(results).__name__}')
    for index, result in enumerate(results):
        problem = _result_problem(result, coco_gt)
        if problem is not None:
            raise ValueError(f'result {index}: {problem}')


def match_image_ids(results: Sequence[dict], coco_gt) -> Tuple[List[dict], bool]:
    """Give results the ground truth's image ids, matching by ``file_name`` where they carry one.

    ``yolact predict`` numbers the images it reads 0, 1, ... and records each one's
    ``file_name``; a dataset numbers them its own way. When every result has a ``file_name``
    and each names exactly one ground-truth image (its full ``file_name`` or, if unambiguous, its
    base name), the image ids are taken from the ground truth. Otherwise the results' own
    ``image_id`` values are kept.

    Returns:
        ``(results, remapped)``: new result dicts, and whether any image id changed.

    Raises:
        ValueError: the file names match some ground-truth images but not all of them (names the
            first one that does not match, or is ambiguous).
    """
    if not results or not all(isinstance(r, dict) and 'file_name' in r for r in results):
        return list(results), False
    by_path: Dict[str, object] = {}
    by_base: Dict[str, List[object]] = {}
    for image_id, image in coco_gt.imgs.items():
        by_path[str(image['file_name'])] = image_id
        by_base.setdefault(PurePosixPath(str(image['file_name'])).name, []).append(image_id)

    def lookup(file_name: str) -> Optional[object]:
        if file_name in by_path:
            return by_path[file_name]
        candidates = by_base.get(PurePosixPath(file_name).name, [])
        return candidates[0] if len(candidates) == 1 else None

    names = {str(r['file_name']) for r in results}
    found = {name: lookup(name) for name in names}
    if all(image_id is None for image_id in found.values()):
        return list(results), False  # e.g. video frames: file names are not dataset images
    unmatched = sorted(name for name, image_id in found.items() if image_id is None)
    if unmatched:
        raise ValueError(f'file_name {unmatched[0]!r} is not an image of the ground truth (or '
                         f'matches several); {len(unmatched)} of {len(names)} file names do not '
                         'match')
    remapped = [dict(r, image_id=found[str(r['file_name'])]) for r in results]
    changed = any(a['image_id'] != b['image_id'] for a, b in zip(results, remapped))
    return remapped, changed


def _load_detections(coco_gt, detections: List[dict]):
    """Return a pycocotools results object (``loadRes``; also when there are no detections)."""
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        if detections:
            return coco_gt.loadRes(detections)
        empty = COCO()
        empty.dataset = {'images': list(coco_gt.dataset['images']),
                         'categories': copy.deepcopy(coco_gt.dataset['categories']),
                         'annotations': []}
        empty.createIndex()
        return empty


def _run_cocoeval(coco_gt, detections: List[dict], iou_type: str, image_ids: List[object]):
    """Evaluate, accumulate and summarise one IoU type; return the ``COCOeval``."""
    from pycocotools.cocoeval import COCOeval

    coco_dt = _load_detections(coco_gt, detections)
    evaluator = COCOeval(coco_gt, coco_dt, iou_type)
    evaluator.params.imgIds = list(image_ids)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def category_ap(evaluator, category_index: int) -> float:
    """AP of one category (index into ``params.catIds``) as ``COCOeval.summarize`` averages it.

    ``precision[:, :, k, area 'all', maxDets 100]`` averaged over its defined (> -1) entries;
    ``-1`` when the category has no ground truth in the evaluated images.
    """
    params = evaluator.params
    area = params.areaRngLbl.index('all')
    max_dets = params.maxDets.index(100)
    # precision: [T, R, K, A, M] -> [T, R] for category k
    precision = evaluator.eval['precision'][:, :, category_index, area, max_dets]
    defined = precision[precision > -1]
    return float(np.mean(defined)) if defined.size else -1.0


def evaluate_results(results: Sequence[dict], coco_gt,
                     image_ids: Optional[Sequence[object]] = None) -> EvalResult:
    """Evaluate COCO results against a pycocotools ``COCO`` ground truth.

    Args:
        results: COCO result objects (``image_id``, ``category_id``, ``score``, ``bbox``
            ``[x, y, w, h]`` and/or RLE ``segmentation``; optional ``mask_score``), image ids
            those of ``coco_gt`` (see :func:`match_image_ids` for ``yolact predict`` output).
        coco_gt: the ground truth (e.g. ``CocoDataset.coco``).
        image_ids: evaluate these images only (default: all of ``coco_gt``); images without
            results count as missed detections.

    Returns:
        The metrics; ``box`` / ``mask`` equal ``COCOeval.stats[:6]`` of a hand run on the bbox and
        segm lists described in the module docstring.

    Raises:
        ValueError: a result is malformed or refers to an unknown image / category (names which);
            an ``image_ids`` entry is not a ground-truth image.
    """
    validate_results(results, coco_gt)
    if image_ids is None:
        image_ids = sorted(coco_gt.imgs)
    image_ids = list(image_ids)
    unknown = [i for i in image_ids if i not in coco_gt.imgs]
    if unknown:
        raise ValueError(f'image_ids {unknown[:5]} are not images of the ground truth')
    if not image_ids:
        raise ValueError('image_ids is empty: nothing to evaluate')
    box_results, mask_results = [], []
    for result in results:
        if 'bbox' in result:
            box = {key: value for key, value in result.items() if key != 'segmentation'}
            box_results.append(box)
        if 'segmentation' in result:
            mask = {key: value for key, value in result.items() if key != 'bbox'}
            if 'mask_score' in result:  # YOLACT++: masks ranked by their predicted quality
                mask['score'] = result['mask_score']
            mask_results.append(mask)
    box_eval = _run_cocoeval(coco_gt, box_results, 'bbox', image_ids)
    mask_eval = _run_cocoeval(coco_gt, mask_results, 'segm', image_ids)

    evaluated = set(image_ids)
    instances = Counter(ann['category_id'] for ann in coco_gt.dataset.get('annotations', [])
                        if ann['image_id'] in evaluated and not ann.get('iscrowd', 0))
    per_class = [
        ClassAP(category_id=int(category_id), name=str(coco_gt.cats[category_id].get('name')),
                box_ap=category_ap(box_eval, index), mask_ap=category_ap(mask_eval, index),
                num_instances=instances[category_id])
        for index, category_id in enumerate(box_eval.params.catIds)]
    return EvalResult(
        box={name: float(v) for name, v in zip(METRIC_NAMES, box_eval.stats[:6])},
        mask={name: float(v) for name, v in zip(METRIC_NAMES, mask_eval.stats[:6])},
        per_class=per_class, results=list(results), box_eval=box_eval, mask_eval=mask_eval,
        image_ids=image_ids)


def check_categories(category_ids: Sequence[int], class_names: Sequence[str],
                     dataset_category_ids: Sequence[int],
                     dataset_class_names: Sequence[str]) -> List[int]:
    """Check that a model's labels mean the dataset's; return the category ids they share.

    Raises:
        ValueError: a shared category id has different names in the model and the dataset (the
            model was trained on another label set), or no category id is shared.
    """
    dataset_names = dict(zip(dataset_category_ids, dataset_class_names))
    shared = []
    for category_id, name in zip(category_ids, class_names):
        if category_id not in dataset_names:
            continue
        if str(name).strip().lower() != str(dataset_names[category_id]).strip().lower():
            raise ValueError(
                f'category id {category_id} is {name!r} for the model but '
                f'{dataset_names[category_id]!r} in the dataset: the model was trained on '
                'another label set')
        shared.append(int(category_id))
    if not shared:
        raise ValueError(f"the model's category ids {list(category_ids)} and the dataset's "
                         f'{list(dataset_category_ids)} have none in common')
    return shared


def evaluate_segmenter(segmenter, dataset, *, max_images: Optional[int] = None,
                       progress: bool = False) -> EvalResult:
    """Segment a dataset's original images and evaluate the detections.

    Args:
        segmenter: a :class:`~yolact_ros.inference.Segmenter` (anything with ``config`` and
            ``__call__(bgr_image) -> Detections``).
        dataset: a :class:`~yolact_ros.data.coco.CocoDataset`; images are read with
            ``dataset.load_image(i)`` (BGR, original size) and evaluated against
            ``dataset.coco``.
        max_images: evaluate the first ``max_images`` images only.
        progress: show a tqdm progress bar.

    Returns:
        The metrics, the COCO results (``image_id`` the dataset's, ``category_id`` the original
        dataset ids, ``file_name`` the dataset's) and the Segmenter's speed.

    Raises:
        ValueError: ``max_images < 1``, or the model's classes are not the dataset's (see
            :func:`check_categories`).
    """
    from tqdm import tqdm

    from yolact_ros.results import detections_to_coco

    if max_images is not None and max_images < 1:
        raise ValueError(f'max_images must be >= 1, got {max_images}')
    count = len(dataset) if max_images is None else min(max_images, len(dataset))
    if count == 0:
        raise ValueError('the dataset has no images')
    config = segmenter.config
    shared = set(check_categories(config.category_ids, config.class_names,
                                  dataset.category_ids, dataset.class_names))
    extra = sorted(set(config.category_ids) - shared)
    if extra:
        LOGGER.warning('model categories %s are not in the dataset; their detections are not '
                       'evaluated', extra)
    results: List[dict] = []
    segment_seconds = 0.0
    stage_ms = np.zeros(3)
    start = time.perf_counter()
    for index in tqdm(range(count), desc='eval', unit='img', disable=not progress):
        image = dataset.load_image(index)
        before = time.perf_counter()
        detections = segmenter(image)
        segment_seconds += time.perf_counter() - before
        stage_ms += (detections.times.preprocess_ms, detections.times.inference_ms,
                     detections.times.postprocess_ms)
        image_id = dataset.image_ids[index]
        file_name = str(dataset.coco.imgs[image_id]['file_name'])
        results += [r for r in detections_to_coco(detections, image_id=image_id,
                                                  file_name=file_name)
                    if r['category_id'] in shared]
    total_seconds = time.perf_counter() - start
    result = evaluate_results(results, dataset.coco, image_ids=dataset.image_ids[:count])
    stage_ms /= count
    result.timing = EvalTiming(
        num_images=count, segment_seconds=segment_seconds, total_seconds=total_seconds,
        preprocess_ms=float(stage_ms[0]), inference_ms=float(stage_ms[1]),
        postprocess_ms=float(stage_ms[2]))
    return result
