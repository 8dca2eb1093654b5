#!/usr/bin/env python3
"""Check that yolact_ros.evaluation gives the numbers of a hand run of pycocotools COCOeval.

Writes a synthetic dataset, makes detections of it (ground truth with jittered boxes, grown or
shrunk masks, random scores and classes, false positives, ``mask_score`` on half of them; or, with
``--weights``, a model's detections through ``evaluate_segmenter``), evaluates them with
``evaluate_results`` and with COCOeval run by hand as its documentation shows (the annotation file
read afresh; a bbox-only and a segm-only result list), and prints the largest absolute difference
over the 12 ``stats`` of each IoU type and the per-class APs. Figure to reach: <= 1e-6.

    python benchmarks/eval_agreement.py                  # perturbed ground truth, 20 images
    python benchmarks/eval_agreement.py --weights weights/yolact_resnet18_synth.safetensors
"""

import argparse
import contextlib
import copy
import io
from pathlib import Path
import sys
import tempfile

import numpy as np

TOLERANCE = 1e-6


def noisy_detections(coco, seed: int) -> list:
    """Return perturbed ground truth plus false positives, as COCO results."""
    import cv2
    from pycocotools import mask as mask_utils

    def rle(mask):
        encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        return {'size': [int(v) for v in encoded['size']],
                'counts': encoded['counts'].decode('ascii')}

    rng = np.random.default_rng(seed)
    categories = sorted(coco.cats)
    kernel = np.ones((3, 3), np.uint8)
    results = []
    for ann in coco.dataset['annotations']:
        mask = coco.annToMask(ann)
        mask = cv2.dilate(mask, kernel) if rng.uniform() < 0.5 else cv2.erode(mask, kernel)
        x, y, w, h = (float(v) + rng.normal(0.0, 2.0) for v in ann['bbox'])
        result = {'image_id': ann['image_id'],
                  'category_id': int(rng.choice(categories)) if rng.uniform() < 0.15
                  else ann['category_id'],
                  'bbox': [x, y, max(w, 1.0), max(h, 1.0)],
                  'score': float(rng.uniform(0.05, 1.0)), 'segmentation': rle(mask)}
        if rng.uniform() < 0.5:
            result['mask_score'] = float(rng.uniform(0.05, 1.0))
        results.append(result)
    for image_id, image in coco.imgs.items():
        for _ in range(3):
            mask = np.zeros((image['height'], image['width']), np.uint8)
            side = int(rng.integers(8, 40))
            x, y = rng.integers(0, [image['width'] - side, image['height'] - side])
            mask[y:y + side, x:x + side] = 1
            results.append({'image_id': image_id, 'category_id': int(rng.choice(categories)),
                            'bbox': [float(x), float(y), float(side), float(side)],
                            'score': float(rng.uniform(0.05, 0.6)), 'segmentation': rle(mask)})
    return results


def hand_cocoeval(coco_gt, results: list, iou_type: str, image_ids: list,
                  category_ids=None) -> np.ndarray:
    """Run COCOeval by hand on the bbox-only or segm-only list; return its 12 stats."""
    from pycocotools.cocoeval import COCOeval

    drop = 'segmentation' if iou_type == 'bbox' else 'bbox'
    detections = []
    for result in copy.deepcopy(results):
        if iou_type == 'segm' and 'mask_score' in result:
            result['score'] = result['mask_score']
        detections.append({k: v for k, v in result.items() if k != drop})
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(detections), iou_type)
        evaluator.params.imgIds = list(image_ids)
        if category_ids is not None:
            evaluator.params.catIds = list(category_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats


def compare(name: str, result, annotation_file: Path) -> float:
    """Print the differences between ``result`` and a hand run; return the largest."""
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(annotation_file))
    largest = 0.0
    for iou_type, evaluator in (('bbox', result.box_eval), ('segm', result.mask_eval)):
        expected = hand_cocoeval(coco_gt, result.results, iou_type, result.image_ids)
        difference = float(np.abs(np.asarray(evaluator.stats) - expected).max())
        largest = max(largest, difference)
        print(f'{name} {iou_type}: AP {expected[0]:.4f} (ours {evaluator.stats[0]:.4f}), '
              f'max |diff| over 12 stats {difference:.3g}')
    per_class = 0.0
    for row in result.per_class:
        for iou_type, ours in (('bbox', row.box_ap), ('segm', row.mask_ap)):
            expected = hand_cocoeval(coco_gt, result.results, iou_type, result.image_ids,
                                     category_ids=[row.category_id])[0]
            per_class = max(per_class, abs(ours - expected))
    print(f'{name} per-class AP ({len(result.per_class)} classes x bbox/segm): max |diff| '
          f'{per_class:.3g}')
    return max(largest, per_class)


def combined_entries_effect(coco_gt, results: list, ours: float) -> None:
    """Print what a hand run gets when each result keeps both bbox and segmentation."""
    from pycocotools.cocoeval import COCOeval

    detections = []
    for result in copy.deepcopy(results):
        if 'mask_score' in result:
            result['score'] = result['mask_score']
        detections.append(result)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(detections), 'segm')
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    print(f'(for reference: loadRes on entries holding both bbox and segmentation takes box '
          f'areas for masks; its segm APs is {evaluator.stats[3]:.4f} vs {ours:.4f})')


def main() -> int:
    """Run the comparison; exit 1 if a difference exceeds the tolerance."""
    from yolact_ros.data.coco import CocoDataset
    from yolact_ros.data.spec import resolve_dataset
    from yolact_ros.data.synthetic_dataset import generate_dataset
    from yolact_ros.evaluation import evaluate_results, evaluate_segmenter

    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--images', type=int, default=20, help='synthetic images (default 20)')
    parser.add_argument('--size', type=int, default=192, help='image side (default 192)')
    parser.add_argument('--seed', type=int, default=0, help='data and noise seed')
    parser.add_argument('--weights', help='also evaluate this model through evaluate_segmenter')
    parser.add_argument('--device', default='cpu', help='device for --weights (default cpu)')
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        generate_dataset(folder, num_images=args.images, size=args.size, seed=args.seed,
                         occlusion='high')
        spec = resolve_dataset(folder, 'val')
        dataset = CocoDataset.from_spec(spec, input_size=args.size)
        results = noisy_detections(dataset.coco, args.seed)
        print(f'{args.images} synthetic {args.size} px images, '
              f'{len(dataset.coco.dataset["annotations"])} instances, {len(results)} detections')
        ours = evaluate_results(results, dataset.coco)
        largest = compare('perturbed ground truth', ours, spec.annotations)
        combined_entries_effect(dataset.coco, results, ours.mask['APs'])
        if args.weights:
            from yolact_ros.inference import Segmenter

            segmenter = Segmenter.from_weights(args.weights, device=args.device)
            model = evaluate_segmenter(segmenter, dataset, progress=sys.stderr.isatty())
            print(f'{Path(args.weights).name}: {len(model.results)} detections, mask AP '
                  f'{model.mask["AP"]:.4f}')
            largest = max(largest, compare(Path(args.weights).name, model, spec.annotations))
    verdict = 'OK' if largest <= TOLERANCE else 'FAIL'
    print(f'max abs difference, ours vs hand-run COCOeval: {largest:.3g} '
          f'(target <= {TOLERANCE:g}): {verdict}')
    return 0 if largest <= TOLERANCE else 1


if __name__ == '__main__':
    sys.exit(main())
