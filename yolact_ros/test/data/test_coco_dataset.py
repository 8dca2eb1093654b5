"""COCO-format loading: polygons, RLE, crowds, id mapping, bad data, normalisation, collate."""

import copy
import json
import logging
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_util
import pytest
import torch
from torch.utils.data import DataLoader

from yolact_ros.config import IMAGENET_MEAN_BGR, IMAGENET_STD_BGR
from yolact_ros.data.coco import CocoDataset, collate
from yolact_ros.data.transforms import SSDAugmentation

SIZE = 40
# ../shared beside the checkout (skipped where absent).
REFERENCE = (Path(__file__).resolve().parents[3].parent / 'shared/reference/upstream'
             / 'yolact_resnet50_ref.npz')


def _circle_rle(center, radius) -> dict:
    mask = np.zeros((SIZE, SIZE), np.uint8)
    cv2.circle(mask, center, radius, 1, -1)
    rle = mask_util.encode(np.asfortranarray(mask))
    return {'size': [SIZE, SIZE], 'counts': rle['counts'].decode('ascii')}


def _uncompressed_rle(x1, y1, x2, y2) -> dict:
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[y1:y2, x1:x2] = 1
    flat = mask.flatten(order='F')  # COCO RLE runs down columns, starting with zeros
    change = np.flatnonzero(np.diff(np.concatenate([[0], flat, [2]])) != 0)
    counts = np.diff(np.concatenate([[0], change])).tolist()
    return {'size': [SIZE, SIZE], 'counts': counts}


def _coco() -> dict:
    return {
        'images': [{'id': 10, 'file_name': 'a.png', 'height': SIZE, 'width': SIZE},
                   {'id': 11, 'file_name': 'b.png', 'height': SIZE, 'width': SIZE},
                   {'id': 12, 'file_name': 'c.png', 'height': SIZE, 'width': SIZE}],
        'annotations': [
            {'id': 100, 'image_id': 10, 'category_id': 7, 'iscrowd': 0, 'area': 300,
             'bbox': [5, 5, 20, 15], 'segmentation': [[5, 5, 25, 5, 25, 20, 5, 20]]},
            {'id': 101, 'image_id': 10, 'category_id': 2, 'iscrowd': 0, 'area': 200,
             'bbox': [22, 22, 15, 15], 'segmentation': _circle_rle((29, 29), 7)},
            {'id': 102, 'image_id': 10, 'category_id': 9, 'iscrowd': 1, 'area': 100,
             'bbox': [0, 30, 20, 10], 'segmentation': _uncompressed_rle(0, 30, 20, 40)},
            {'id': 110, 'image_id': 11, 'category_id': 9, 'iscrowd': 0, 'area': 150,
             'bbox': [10, 10, 20, 20], 'segmentation': [[10, 10, 30, 10, 20, 30]]},
        ],
        'categories': [{'id': 9, 'name': 'nine'}, {'id': 2, 'name': 'two'},
                       {'id': 7, 'name': 'seven'}],
    }


def _write(root: Path, data: dict, sizes=None) -> Path:
    images = root / 'images'
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for image in data['images']:
        height, width = (sizes or {}).get(image['id'], (image['height'], image['width']))
        cv2.imwrite(str(images / image['file_name']),
                    rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    path = root / 'annotations.json'
    path.write_text(json.dumps(data))
    return path


def _dataset(root: Path, data=None, **kwargs) -> CocoDataset:
    path = _write(root, _coco() if data is None else data, kwargs.pop('sizes', None))
    return CocoDataset(root / 'images', path, input_size=kwargs.pop('input_size', SIZE), **kwargs)


def test_category_ids_map_to_contiguous_labels(tmp_path):
    dataset = _dataset(tmp_path)
    assert dataset.category_ids == (2, 7, 9)
    assert dataset.label_map == {2: 0, 7: 1, 9: 2}
    assert dataset.class_names == ('two', 'seven', 'nine')
    _, target = dataset[1]
    assert target['labels'].tolist() == [2] and target['image_id'] == 11
    named = _dataset(tmp_path, class_names=['a', 'b', 'c'])
    assert named.class_names == ('a', 'b', 'c')
    with pytest.raises(ValueError, match='3 categories'):
        _dataset(tmp_path, class_names=['a', 'b'])


def test_polygon_rle_and_crowd_targets(tmp_path):
    dataset = _dataset(tmp_path)
    image, target = dataset[0]
    assert image.shape == (3, SIZE, SIZE) and image.dtype == torch.float32
    assert target['labels'].tolist() == [1, 0]
    assert target['boxes'].dtype == torch.float32 and target['masks'].dtype == torch.uint8
    np.testing.assert_allclose(target['boxes'].numpy(),
                               [[5 / SIZE, 5 / SIZE, 25 / SIZE, 20 / SIZE],
                                [22 / SIZE, 22 / SIZE, 37 / SIZE, 37 / SIZE]], rtol=1e-6)
    coco = dataset.coco
    for mask, ann_id in zip(target['masks'].numpy(), (100, 101)):
        np.testing.assert_array_equal(mask, coco.annToMask(coco.anns[ann_id]))
    assert 250 < target['masks'][0].sum() < 350  # the 20 x 15 rectangle polygon
    np.testing.assert_allclose(target['crowd_boxes'].numpy(), [[0, 0.75, 0.5, 1.0]])
    assert target['orig_size'] == (SIZE, SIZE)


def test_image_without_annotations(tmp_path):
    dataset = _dataset(tmp_path)
    _, target = dataset[2]
    assert target['image_id'] == 12
    assert tuple(target['boxes'].shape) == (0, 4) and tuple(target['labels'].shape) == (0,)
    assert tuple(target['masks'].shape) == (0, SIZE, SIZE)
    assert tuple(target['crowd_boxes'].shape) == (0, 4)
    assert _dataset(tmp_path, skip_empty=True).image_ids == [10, 11]


def _break(data: dict, ann_id: int, **changes) -> dict:
    data = copy.deepcopy(data)
    ann = next(a for a in data['annotations'] if a['id'] == ann_id)
    ann.update(changes)
    return data


@pytest.mark.parametrize('ann_id, changes, reason', [
    (100, {'segmentation': [[5, 5, 25, 5]]}, 'polygon with < 3 points'),
    (110, {'bbox': [10, 10, 0, 20]}, 'zero-area box'),
    (101, {'segmentation': _circle_rle((29, 29), 7) | {'size': [SIZE, SIZE + 1]}},
     'does not match image size'),
    (110, {'category_id': 5}, 'unknown category id 5'),
    (100, {'image_id': 99}, 'unknown image id'),
])
def test_bad_annotations_are_skipped_with_a_warning_naming_them(
        tmp_path, caplog, ann_id, changes, reason):
    data = _break(_coco(), ann_id, **changes)
    with caplog.at_level(logging.WARNING, logger='yolact_ros.data.coco'):
        dataset = _dataset(tmp_path, data=data)
    original = next(a for a in _coco()['annotations'] if a['id'] == ann_id)
    image_id = changes.get('image_id', original['image_id'])
    assert [(s.annotation_id, s.image_id) for s in dataset.skipped] == [(ann_id, image_id)]
    assert reason in dataset.skipped[0].reason
    assert f'annotation id {ann_id} (image id {image_id})' in caplog.text
    assert ann_id not in dataset.coco.anns and len(dataset.coco.anns) == 3
    for index in range(len(dataset)):  # every item still loads
        dataset[index]


def test_missing_image_file_is_an_error_naming_it(tmp_path):
    _write(tmp_path, _coco())
    (tmp_path / 'images/b.png').unlink()
    with pytest.raises(FileNotFoundError, match=r'image id 11: .*b\.png'):
        CocoDataset(tmp_path / 'images', tmp_path / 'annotations.json', input_size=SIZE)


def test_unreadable_annotation_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / 'broken.json'
    path.write_text('{"images": [')
    with pytest.raises(ValueError, match='broken.json'):
        CocoDataset(tmp_path, path, input_size=SIZE)
    path.write_text('{"annotations": []}')
    with pytest.raises(ValueError, match="broken.json: field 'images'"):
        CocoDataset(tmp_path, path, input_size=SIZE)
    with pytest.raises(FileNotFoundError, match='nothere.json'):
        CocoDataset(tmp_path, tmp_path / 'nothere.json', input_size=SIZE)


def test_image_of_another_size_than_declared_loses_its_annotations(tmp_path, caplog):
    dataset = _dataset(tmp_path, sizes={11: (20, 30)})
    with caplog.at_level(logging.WARNING, logger='yolact_ros.data.coco'):
        image, target = dataset[1]
    assert 'image id 11' in caplog.text and '20x30' in caplog.text
    assert image.shape == (3, SIZE, SIZE) and len(target['labels']) == 0
    assert target['orig_size'] == (20, 30)


def test_eval_input_is_resized_and_normalised_as_the_network_expects(tmp_path):
    dataset = _dataset(tmp_path, input_size=24)
    image, target = dataset[0]
    original = dataset.load_image(0)
    resized = cv2.resize(original.astype(np.float32), (24, 24), interpolation=cv2.INTER_LINEAR)
    expected = ((resized - IMAGENET_MEAN_BGR) / IMAGENET_STD_BGR)[:, :, ::-1].transpose(2, 0, 1)
    np.testing.assert_allclose(image.numpy(), expected, atol=1e-5)
    assert tuple(target['masks'].shape) == (2, 24, 24)


@pytest.mark.skipif(not REFERENCE.is_file(), reason=f'{REFERENCE} not available')
def test_eval_input_matches_upstream_reference(tmp_path):
    reference = np.load(REFERENCE)
    image_bgr = reference['image_bgr']
    (tmp_path / 'images').mkdir()
    cv2.imwrite(str(tmp_path / 'images/ref.png'), image_bgr)
    height, width = image_bgr.shape[:2]
    data = {'images': [{'id': 1, 'file_name': 'ref.png', 'height': height, 'width': width}],
            'annotations': [], 'categories': [{'id': 1, 'name': 'x'}]}
    (tmp_path / 'ann.json').write_text(json.dumps(data))
    dataset = CocoDataset(tmp_path / 'images', tmp_path / 'ann.json', input_size=550)
    image, _ = dataset[0]
    np.testing.assert_allclose(image.numpy(), reference['input'][0], atol=1e-4)


def test_augmentation_depends_on_seed_epoch_and_index_only(tmp_path):
    dataset = _dataset(tmp_path, input_size=32,
                       augmentation=SSDAugmentation(32, IMAGENET_MEAN_BGR), seed=5)
    first = [dataset[i][0] for i in range(3)]
    assert torch.equal(dataset[1][0], first[1])  # same item again, any order
    dataset.set_epoch(1)
    second = [dataset[i][0] for i in range(3)]
    assert not all(torch.equal(a, b) for a, b in zip(first, second))
    image, target = dataset[0]
    assert image.shape == (3, 32, 32)
    assert target['masks'].shape[1:] == (32, 32)
    assert len(target['boxes']) == len(target['labels']) == len(target['masks'])
    assert ((target['boxes'] >= 0) & (target['boxes'] <= 1)).all()


def test_collate_through_a_data_loader(tmp_path):
    loader = DataLoader(_dataset(tmp_path), batch_size=2, collate_fn=collate)
    images, targets = next(iter(loader))
    assert tuple(images.shape) == (2, 3, SIZE, SIZE)
    assert [t['image_id'] for t in targets] == [10, 11]
    assert [len(t['labels']) for t in targets] == [2, 1]


def test_synthetic_dataset_loads_through_pycocotools(synth_dir):
    dataset = CocoDataset(synth_dir / 'images', synth_dir / 'annotations.json', input_size=96)
    assert dataset.category_ids == (1, 3, 5, 7, 9, 11) and not dataset.skipped
    total = 0
    for index in range(len(dataset)):
        _, target = dataset[index]
        anns = dataset.coco.imgToAnns[dataset.image_ids[index]]
        assert target['labels'].tolist() == [dataset.label_map[a['category_id']] for a in anns]
        for mask, box, ann in zip(target['masks'].numpy(), target['boxes'].numpy(), anns):
            np.testing.assert_array_equal(mask, dataset.coco.annToMask(ann))
            ys, xs = np.nonzero(mask)
            np.testing.assert_allclose(box * 96, [xs.min(), ys.min(), xs.max() + 1,
                                                  ys.max() + 1], atol=1e-4)
            total += 1
    assert total == len(dataset.coco.anns)
