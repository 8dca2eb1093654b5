"""Synthetic data: determinism, visible masks, holes, occlusion, the video."""

import json
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_util
from pycocotools.coco import COCO
import pytest

from yolact_ros.data.synthetic import CATEGORY_IDS, compose_scene, random_scene, ShapeSpec
from yolact_ros.data.synthetic_dataset import generate_dataset, instance_annotation
from yolact_ros.data.synthetic_sequence import synthetic_video_frames, write_synthetic_video


def _files(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob('*'))
            if p.is_file()}


def _plain(height: int = 64, width: int = 64) -> np.ndarray:
    return np.full((height, width, 3), 40, np.uint8)


def _decode(ann: dict) -> np.ndarray:
    segm = dict(ann['segmentation'], counts=ann['segmentation']['counts'].encode('ascii'))
    return mask_util.decode(segm).astype(bool)


def test_same_seed_gives_identical_bytes(tmp_path, synth_dir, synth_args):
    generate_dataset(tmp_path / 'again', **synth_args)
    assert _files(tmp_path / 'again') == _files(synth_dir)
    other = dict(synth_args, seed=4)
    generate_dataset(tmp_path / 'other', **other)
    assert (tmp_path / 'other/images/000000.png').read_bytes() != (
        synth_dir / 'images/000000.png').read_bytes()


def test_image_does_not_depend_on_dataset_length(tmp_path, synth_dir, synth_args):
    generate_dataset(tmp_path / 'short', **dict(synth_args, num_images=2))
    for name in ('000000.png', '000001.png'):
        assert (tmp_path / 'short/images' / name).read_bytes() == (
            synth_dir / 'images' / name).read_bytes()


def test_written_annotations_repaint_the_rendered_label_map(synth_dir, synth_args):
    coco = COCO(str(synth_dir / 'annotations.json'))
    size, seed, occlusion = synth_args['size'], synth_args['seed'], synth_args['occlusion']
    checked = 0
    for index, image_id in enumerate(sorted(coco.getImgIds())):
        scene = random_scene(np.random.default_rng([seed, index]), size, size, occlusion)
        on_disk = cv2.imread(str(synth_dir / 'images' / coco.imgs[image_id]['file_name']))
        np.testing.assert_array_equal(on_disk, scene.image)
        painted = np.full((size, size), -1, np.int32)
        coverage = np.zeros((size, size), np.int32)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
        assert [a['depth'] for a in anns] == [i.depth for i in scene.instances]
        for ann in anns:
            mask = coco.annToMask(ann).astype(bool)
            assert mask.sum() == ann['area'] >= 20
            painted[mask] = ann['depth']
            coverage += mask
            checked += 1
        assert coverage.max() <= 1  # visible masks never overlap
        expected = scene.label_map.copy()
        kept = {i.depth for i in scene.instances}
        expected[~np.isin(expected, list(kept))] = -1
        np.testing.assert_array_equal(painted, expected)
    assert checked > 10


def test_masks_are_exactly_the_pixels_painted_with_each_texture():
    background = _plain()
    shapes = [
        ShapeSpec('square', (30, 30), 18, angle=10, pattern='checker',
                  colors=((0, 0, 200), (200, 200, 0))),
        ShapeSpec('star', (40, 36), 16, angle=30, inner=0.5, pattern='stripes',
                  colors=((10, 180, 10), (250, 250, 250))),
    ]
    scene = compose_scene(background, shapes)
    union = np.zeros((64, 64), bool)
    for instance, shape in zip(scene.instances, shapes):
        ys, xs = np.nonzero(instance.mask)
        np.testing.assert_array_equal(scene.image[ys, xs], shape.shade(xs, ys))
        union |= instance.mask
    np.testing.assert_array_equal(scene.image[~union], background[~union])
    # The star is on top: it is wholly visible, the square only partly.
    assert scene.instances[1].visible_fraction == 1.0
    assert 0.3 < scene.instances[0].visible_fraction < 0.95


def test_ring_hole_is_kept_in_the_annotation():
    ring = ShapeSpec('ring', (32, 32), 24, inner=0.5)
    scene = compose_scene(_plain(), [ring])
    ann = instance_annotation(scene.instances[0], annotation_id=1, image_id=1)
    mask = _decode(ann)
    assert not mask[32, 32] and not mask[32, 40]  # inside the hole
    assert mask[32, 32 + 18] and mask[32 - 18, 32]  # on the ring
    _, hierarchy = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP,
                                    cv2.CHAIN_APPROX_SIMPLE)
    assert (hierarchy[0, :, 3] >= 0).sum() == 1  # exactly one hole
    assert ann['category_id'] == 7


def test_hidden_shapes_are_dropped_and_split_shapes_keep_all_parts():
    hidden = ShapeSpec('circle', (30, 30), 6)
    nearly = ShapeSpec('triangle', (15, 20), 6, angle=180)  # only its tip sticks out
    split = ShapeSpec('circle', (32, 52), 10)
    cover = ShapeSpec('square', (28, 28), 20, angle=45)  # axis-aligned square 28 px across
    bar = ShapeSpec('ellipse', (32, 52), 30, aspect=0.1, angle=90)  # vertical bar over `split`
    scene = compose_scene(_plain(), [hidden, nearly, split, cover, bar])
    nearly_visible = int((scene.label_map == 1).sum())
    assert 0 < nearly_visible < 20
    depths = [i.depth for i in scene.instances]
    assert 0 not in depths and 1 not in depths
    parts = scene.instances[depths.index(2)]
    count, _ = cv2.connectedComponents(parts.mask.astype(np.uint8), connectivity=4)
    assert count - 1 == 2
    ann = instance_annotation(parts, annotation_id=1, image_id=1)
    np.testing.assert_array_equal(_decode(ann), parts.mask)
    assert 0.2 < ann['visible_fraction'] < 0.9


def test_high_occlusion_hides_more(tmp_path):
    low = generate_dataset(tmp_path / 'low', num_images=6, size=80, seed=0, occlusion='low')
    high = generate_dataset(tmp_path / 'high', num_images=6, size=80, seed=0, occlusion='high')
    assert high.mean_visible_fraction < low.mean_visible_fraction - 0.1
    assert high.num_instances > low.num_instances


def test_categories_are_not_contiguous(synth_dir):
    data = json.loads((synth_dir / 'annotations.json').read_text())
    ids = [c['id'] for c in data['categories']]
    assert ids == list(CATEGORY_IDS) and ids != list(range(1, len(ids) + 1))
    assert {a['category_id'] for a in data['annotations']} <= set(ids)
    assert all(0 < a['visible_fraction'] <= 1 for a in data['annotations'])


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError, match='occlusion'):
        generate_dataset(tmp_path, num_images=1, size=64, seed=0, occlusion='medium')
    with pytest.raises(ValueError, match='size'):
        generate_dataset(tmp_path, num_images=1, size=8, seed=0)


@pytest.mark.parametrize('suffix', ['.avi', '.mp4'])
def test_video_is_written_and_shapes_move(tmp_path, suffix):
    path = write_synthetic_video(tmp_path / f'scene{suffix}', frames=5, size=(64, 48), seed=1)
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    assert len(frames) == 5 and frames[0].shape == (48, 64, 3)
    scenes = list(synthetic_video_frames(5, (64, 48), seed=1))
    assert not np.array_equal(scenes[0].label_map, scenes[-1].label_map)
    assert all(s.instances for s in scenes)
