"""COCO evaluation: pinned hand-computed APs, agreement with a hand run of COCOeval, bad input."""

import contextlib
import copy
import io

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
import pytest

from yolact_ros.config import get_config
from yolact_ros.evaluation import (
    check_categories, evaluate_results, evaluate_segmenter, match_image_ids, METRIC_NAMES)
from yolact_ros.structures import Detections, StageTimes, WindowedMasks

# COCO interpolates precision at 101 recall points; reaching recall 0.5 at precision 1 and no
# further gives 51 points (0.00 ... 0.50) at 1 and 50 at 0.
HALF_RECALL_AP = 51 / 101


def square_mask(x, y, side, size=40):
    mask = np.zeros((size, size), np.uint8)
    mask[y:y + side, x:x + side] = 1
    return mask


def rle(mask):
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {'size': [int(v) for v in encoded['size']], 'counts': encoded['counts'].decode()}


def make_gt(squares):
    """Return a COCO of one 40x40 image (id 7) with category-1 squares ``(x, y, side)``."""
    annotations = [{'id': i + 1, 'image_id': 7, 'category_id': 1, 'bbox': [x, y, s, s],
                    'area': s * s, 'iscrowd': 0, 'segmentation': rle(square_mask(x, y, s))}
                   for i, (x, y, s) in enumerate(squares)]
    coco = COCO()
    coco.dataset = {'images': [{'id': 7, 'file_name': 'a/b.png', 'height': 40, 'width': 40}],
                    'categories': [{'id': 1, 'name': 'square'}, {'id': 2, 'name': 'circle'}],
                    'annotations': annotations}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def detection(x, y, side, score, **extra):
    return {'image_id': 7, 'category_id': 1, 'bbox': [x, y, side, side], 'score': score,
            'segmentation': rle(square_mask(x, y, side)), **extra}


def hand_cocoeval(coco_gt, results, iou_type, image_ids=None, category_ids=None):
    """Run COCOeval as its documentation shows, on the bbox-only or segm-only list."""
    drop = 'segmentation' if iou_type == 'bbox' else 'bbox'
    detections = []
    for result in copy.deepcopy(results):
        if drop == 'bbox' and 'mask_score' in result:
            result['score'] = result['mask_score']
        detections.append({k: v for k, v in result.items() if k != drop})
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(detections), iou_type)
        if image_ids is not None:
            evaluator.params.imgIds = list(image_ids)
        if category_ids is not None:
            evaluator.params.catIds = list(category_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats


def test_hand_computed_case_one_hit_one_false_positive_one_miss():
    coco = make_gt([(5, 5, 10), (25, 25, 10)])
    results = [detection(5, 5, 10, 0.9), detection(20, 0, 10, 0.8)]
    result = evaluate_results(results, coco)
    for metrics in (result.box, result.mask):
        assert metrics['AP'] == pytest.approx(HALF_RECALL_AP, abs=1e-12)
        assert metrics['AP50'] == metrics['AP75'] == pytest.approx(HALF_RECALL_AP, abs=1e-12)
        assert metrics['APs'] == pytest.approx(HALF_RECALL_AP, abs=1e-12)  # 10x10 < 32x32
        assert metrics['APm'] == metrics['APl'] == -1.0  # no medium or large ground truth
    square, circle = result.per_class
    assert (square.category_id, square.name, square.num_instances) == (1, 'square', 2)
    assert square.box_ap == square.mask_ap == pytest.approx(HALF_RECALL_AP, abs=1e-12)
    assert (circle.box_ap, circle.mask_ap, circle.num_instances) == (-1.0, -1.0, 0)
    assert result.image_ids == [7] and result.results == results


def test_mask_score_ranks_masks_and_score_ranks_boxes():
    coco = make_gt([(5, 5, 10)])
    hit = detection(5, 5, 10, 0.9, mask_score=0.1)
    false_positive = detection(25, 25, 10, 0.5, mask_score=0.8)
    result = evaluate_results([hit, false_positive], coco)
    assert result.box['AP'] == pytest.approx(1.0)  # the hit ranks first by score
    # by mask score the false positive comes first: precision 1/2 at every recall
    assert result.mask['AP'] == pytest.approx(0.5)


def test_mask_ap_uses_mask_areas_not_box_areas():
    # A 10x10 mask inside a 40x40 box: by box area it would be "medium", by mask area "small".
    coco = make_gt([(5, 5, 10)])
    wide_box = dict(detection(5, 5, 10, 0.9), bbox=[0.0, 0.0, 40.0, 40.0])
    result = evaluate_results([wide_box], coco)
    assert result.mask['APs'] == pytest.approx(1.0)
    assert result.box['AP'] < 0.1  # the box itself is poor


def test_no_results_gives_zero_not_a_crash():
    result = evaluate_results([], make_gt([(5, 5, 10)]))
    assert result.box['AP'] == result.mask['AP'] == 0.0
    assert result.per_class[0].box_ap == 0.0


def test_identical_to_a_hand_run_of_cocoeval(eval_dataset, noisy_results):
    gt = eval_dataset.coco
    result = evaluate_results(noisy_results, gt)
    assert 0.1 < result.box['AP'] < 0.9 and 0.1 < result.mask['AP'] < 0.9  # not a trivial case
    for iou_type, evaluator, metrics in (('bbox', result.box_eval, result.box),
                                         ('segm', result.mask_eval, result.mask)):
        expected = hand_cocoeval(gt, noisy_results, iou_type)
        np.testing.assert_allclose(evaluator.stats, expected, rtol=0, atol=1e-12)
        assert [metrics[name] for name in METRIC_NAMES] == pytest.approx(
            expected[:6].tolist(), abs=1e-12)
    for row in result.per_class:  # per-class AP == COCOeval restricted to that category
        assert row.box_ap == pytest.approx(hand_cocoeval(
            gt, noisy_results, 'bbox', category_ids=[row.category_id])[0], abs=1e-12)
        assert row.mask_ap == pytest.approx(hand_cocoeval(
            gt, noisy_results, 'segm', category_ids=[row.category_id])[0], abs=1e-12)
    assert sum(row.num_instances for row in result.per_class) == len(gt.dataset['annotations'])


def test_image_subset_is_evaluated_like_cocoeval_with_img_ids(eval_dataset, noisy_results):
    subset = eval_dataset.image_ids[:2]
    result = evaluate_results(noisy_results, eval_dataset.coco, image_ids=subset)
    expected = hand_cocoeval(eval_dataset.coco, noisy_results, 'segm', image_ids=subset)
    np.testing.assert_allclose(result.mask_eval.stats, expected, rtol=0, atol=1e-12)
    assert result.image_ids == subset


@pytest.mark.parametrize('change, message', [
    ({'image_id': 999}, 'result 1: image_id 999 is not an image of the ground truth'),
    ({'category_id': 4}, 'result 1: category_id 4 is not a ground-truth category'),
    ({'score': float('nan')}, 'result 1: score must be a finite number, got nan'),
    ({'bbox': [1, 2, -3, 4]}, 'result 1: bbox must be [x, y, w, h] with w, h >= 0'),
    ({'segmentation': [[1, 2, 3, 4, 5, 6]]}, 'result 1: segmentation must be compressed RLE'),
    ({'segmentation': rle(np.zeros((20, 40), bool))},
     'result 1: segmentation size [20, 40] is not the size of image 7 [40, 40]'),
])
def test_bad_results_are_errors_naming_the_result_and_value(change, message):
    good = detection(5, 5, 10, 0.9)
    with pytest.raises(ValueError) as error:
        evaluate_results([good, dict(good, **change)], make_gt([(5, 5, 10)]))
    assert message in str(error.value)


def test_results_must_be_a_list_and_image_ids_known():
    coco = make_gt([(5, 5, 10)])
    with pytest.raises(ValueError, match='results must be a list of objects, got dict'):
        evaluate_results({'image_id': 7}, coco)
    with pytest.raises(ValueError, match=r'image_ids \[8\] are not images of the ground truth'):
        evaluate_results([], coco, image_ids=[7, 8])


def test_match_image_ids_by_file_name():
    coco = make_gt([(5, 5, 10)])
    predicted = [dict(detection(5, 5, 10, 0.9), image_id=0, file_name='b.png')]
    remapped, changed = match_image_ids(predicted, coco)
    assert changed and remapped[0]['image_id'] == 7 and predicted[0]['image_id'] == 0
    assert match_image_ids([dict(predicted[0], file_name='a/b.png', image_id=7)], coco)[1] is False
    without_names = [detection(5, 5, 10, 0.9)]
    assert match_image_ids(without_names, coco) == (without_names, False)
    video = [dict(predicted[0], file_name='clip.mp4')]  # frames of a video: ids kept
    assert match_image_ids(video, coco) == (video, False)
    with pytest.raises(ValueError, match="file_name 'c.png' is not an image of the ground truth"):
        match_image_ids(predicted + [dict(predicted[0], file_name='c.png')], coco)


def test_check_categories_needs_the_same_names_for_the_same_ids():
    assert check_categories((1, 3), ('circle', 'square'), (1, 3, 5), ('Circle', 'square', 'x')
                            ) == [1, 3]
    with pytest.raises(ValueError, match="category id 3 is 'car' for the model but 'square'"):
        check_categories((1, 3), ('circle', 'car'), (1, 3), ('circle', 'square'))
    with pytest.raises(ValueError, match='have none in common'):
        check_categories((2,), ('dog',), (1, 3), ('circle', 'square'))


class OracleSegmenter:
    """Return each image's ground truth as detections (images come in dataset order)."""

    def __init__(self, dataset, config):
        self.dataset, self.config, self.calls = dataset, config, 0

    def __call__(self, image):
        coco = self.dataset.coco
        image_id = self.dataset.image_ids[self.calls]
        self.calls += 1
        anns = coco.imgToAnns[image_id]
        boxes = np.array([[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2],
                           a['bbox'][1] + a['bbox'][3]] for a in anns], np.float32)
        labels = np.array([self.dataset.label_map[a['category_id']] for a in anns], np.int64)
        return Detections(
            boxes=boxes, scores=np.linspace(1.0, 0.5, len(anns), dtype=np.float32),
            class_ids=labels, class_names=[self.dataset.class_names[i] for i in labels],
            category_ids=np.array([a['category_id'] for a in anns], np.int64),
            mask_windows=WindowedMasks.from_dense(
                np.stack([coco.annToMask(a).astype(bool) for a in anns])),
            image_size=image.shape[:2], times=StageTimes(1.0, 2.0, 3.0))


def test_evaluate_segmenter_reports_dataset_ids_and_file_names(eval_dataset):
    from yolact_ros.data.synthetic import CATEGORY_IDS, CLASS_NAMES

    config = get_config('yolact_resnet18').with_classes(CLASS_NAMES, CATEGORY_IDS)
    oracle = OracleSegmenter(eval_dataset, config)
    result = evaluate_segmenter(oracle, eval_dataset, max_images=3)
    assert oracle.calls == 3
    assert result.box['AP'] == pytest.approx(1.0) and result.mask['AP'] == pytest.approx(1.0)
    assert result.image_ids == eval_dataset.image_ids[:3]
    files = {image_id: eval_dataset.coco.imgs[image_id]['file_name']
             for image_id in result.image_ids}
    assert {(r['image_id'], r['file_name']) for r in result.results} == set(files.items())
    assert {r['category_id'] for r in result.results} <= set(CATEGORY_IDS)
    timing = result.timing
    assert timing.num_images == 3
    assert (timing.preprocess_ms, timing.inference_ms, timing.postprocess_ms) == (1.0, 2.0, 3.0)
    assert timing.images_per_second > 0 and timing.segment_seconds <= timing.total_seconds


def test_evaluate_segmenter_rejects_another_label_set(eval_dataset):
    config = get_config('yolact_resnet18')  # COCO: id 1 is "person", not "circle"
    with pytest.raises(ValueError, match="category id 1 is 'person' for the model"):
        evaluate_segmenter(OracleSegmenter(eval_dataset, config), eval_dataset)
    with pytest.raises(ValueError, match='max_images must be >= 1, got 0'):
        evaluate_segmenter(OracleSegmenter(eval_dataset, config), eval_dataset, max_images=0)


def test_a_real_model_through_evaluate_segmenter_equals_a_hand_run(eval_dataset, tiny_weights):
    from yolact_ros.config import PostprocessConfig
    from yolact_ros.inference import Segmenter

    segmenter = Segmenter.from_weights(tiny_weights, device='cpu',
                                       postprocess=PostprocessConfig(score_threshold=0.0))
    result = evaluate_segmenter(segmenter, eval_dataset, max_images=2)
    assert result.results
    # The tiny model's classes (circle 1, square 3, ring 7) are a subset of the dataset's.
    assert {r['category_id'] for r in result.results} <= {1, 3, 7}
    for iou_type, evaluator in (('bbox', result.box_eval), ('segm', result.mask_eval)):
        expected = hand_cocoeval(eval_dataset.coco, result.results, iou_type,
                                 image_ids=eval_dataset.image_ids[:2])
        np.testing.assert_allclose(evaluator.stats, expected, rtol=0, atol=1e-12)
