"""Synthetic datasets on disk: COCO instances files of :mod:`yolact_ros.data.synthetic` scenes.

Everything is a pure function of the seed: image ``i`` of a dataset uses the generator
``numpy.random.default_rng([seed, i])``, so outputs are byte-identical for a seed and do not depend
on how many images are written.
"""

from dataclasses import dataclass
import json
import os
from pathlib import Path
from typing import List, Sequence, Tuple, Union

import cv2
import numpy as np

from yolact_ros.data.synthetic import (
    CATEGORIES, CLASS_NAMES, Instance, OCCLUSION_LEVELS, random_scene)


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`generate_dataset` wrote."""

    num_images: int
    num_instances: int
    mean_visible_fraction: float
    instances_per_class: dict
    annotation_file: Path
    spec_file: Path


def instance_annotation(instance: Instance, *, annotation_id: int, image_id: int) -> dict:
    """Return the COCO annotation (compressed RLE) of a visible instance.

    Besides the COCO fields it stores ``visible_fraction`` and ``depth``.
    """
    from pycocotools import mask as mask_util

    rle = mask_util.encode(np.asfortranarray(instance.mask.astype(np.uint8)))
    bbox = [float(v) for v in mask_util.toBbox(rle)]
    return {
        'id': annotation_id, 'image_id': image_id, 'category_id': instance.category_id,
        'segmentation': {'size': [int(s) for s in rle['size']],
                         'counts': rle['counts'].decode('ascii')},
        'area': float(mask_util.area(rle)), 'bbox': bbox, 'iscrowd': 0,
        'visible_fraction': round(float(instance.visible_fraction), 6),
        'depth': instance.depth,
    }


ImageSize = Union[int, Tuple[int, int]]


def image_sizes(size: Union[ImageSize, Sequence[ImageSize]]) -> List[Tuple[int, int]]:
    """``S``, ``(W, H)`` or a list of them -> a list of ``(W, H)``, each side checked >= 32."""
    if isinstance(size, int) or (isinstance(size, tuple) and len(size) == 2
                                 and all(isinstance(v, int) for v in size)):
        size = [size]
    sizes = [(s, s) if isinstance(s, int) else (int(s[0]), int(s[1])) for s in size]
    if not sizes or min(min(s) for s in sizes) < 32:
        raise ValueError(f'image size sides must be >= 32, got {sizes}')
    return sizes


def generate_dataset(out_dir: Union[str, Path], *, num_images: int,
                     size: Union[ImageSize, Sequence[ImageSize]], seed: int,
                     occlusion: str = 'low', image_format: str = 'png',
                     min_visible_pixels: int = 20, progress: bool = False) -> SynthSummary:
    """Write a COCO instances dataset of synthetic scenes.

    Layout: ``out_dir/images/000000.png`` ..., ``out_dir/annotations.json`` and
    ``out_dir/dataset.yaml`` (the dataset spec naming both, with the class names). Image ids and
    annotation ids start at 1; category ids are :data:`CATEGORY_IDS` (not contiguous).

    Args:
        out_dir: output directory (created; existing files of the same names are overwritten).
        num_images: how many images.
        size: image side ``S`` (square images), ``(W, H)``, or a list of them: image ``i``
            has the ``i % len``-th size (camera-shaped and square images in one set).
        seed: every byte written is a function of the arguments.
        occlusion: ``'low'`` or ``'high'`` (see :func:`~yolact_ros.data.synthetic.random_shapes`).
        image_format: ``'png'`` (lossless) or ``'jpg'`` (smaller; masks still exact).
        min_visible_pixels: shapes with fewer visible pixels are dropped.
        progress: show a tqdm progress bar.

    Returns:
        Counts and paths of what was written.
    """
    import yaml
    from tqdm import tqdm

    if num_images < 1:
        raise ValueError(f'num_images must be >= 1, got {num_images}')
    sizes = image_sizes(size)
    if seed < 0:
        raise ValueError(f'seed must be >= 0, got {seed}')
    if occlusion not in OCCLUSION_LEVELS:
        raise ValueError(f'occlusion must be one of {OCCLUSION_LEVELS}, got {occlusion!r}')
    if image_format not in ('png', 'jpg'):
        raise ValueError(f"image_format must be 'png' or 'jpg', got {image_format!r}")
    out_dir = Path(out_dir)
    images_dir = out_dir / 'images'
    images_dir.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_PNG_COMPRESSION, 3] if image_format == 'png' else [
        cv2.IMWRITE_JPEG_QUALITY, 95]

    images, annotations = [], []
    for index in tqdm(range(num_images), desc='synth', unit='img', disable=not progress):
        rng = np.random.default_rng([seed, index])
        width, height = sizes[index % len(sizes)]
        scene = random_scene(rng, height, width, occlusion, min_visible_pixels=min_visible_pixels)
        file_name = f'{index:06d}.{image_format}'
        if not cv2.imwrite(str(images_dir / file_name), scene.image, params):
            raise OSError(f'could not write {images_dir / file_name}')
        image_id = index + 1
        images.append({'id': image_id, 'file_name': file_name, 'width': width, 'height': height})
        for instance in scene.instances:
            annotations.append(instance_annotation(
                instance, annotation_id=len(annotations) + 1, image_id=image_id))

    coco = {
        'info': {'description': 'yolact_ros synthetic shapes', 'version': '1',
                 'seed': seed, 'size': size, 'occlusion': occlusion},
        'licenses': [],
        'images': images,
        'annotations': annotations,
        'categories': [{'id': cid, 'name': name, 'supercategory': 'shape'}
                       for cid, name in CATEGORIES],
    }
    annotation_file = out_dir / 'annotations.json'
    write_text(annotation_file, json.dumps(coco, separators=(',', ':')))
    spec_file = out_dir / 'dataset.yaml'
    spec = {'images': 'images', 'annotations': annotation_file.name,
            'class_names': list(CLASS_NAMES)}
    write_text(spec_file, '# Synthetic shapes written by `yolact synth` '
               f'(seed {seed}, size {size}, occlusion {occlusion}).\n'
               + yaml.safe_dump(spec, sort_keys=False, default_flow_style=None))

    per_class = dict.fromkeys(CLASS_NAMES, 0)
    name_of = dict(CATEGORIES)
    for ann in annotations:
        per_class[name_of[ann['category_id']]] += 1
    fractions = [ann['visible_fraction'] for ann in annotations]
    return SynthSummary(
        num_images=num_images, num_instances=len(annotations),
        mean_visible_fraction=float(np.mean(fractions)) if fractions else 0.0,
        instances_per_class=per_class, annotation_file=annotation_file, spec_file=spec_file)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` atomically (temporary file, then rename)."""
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(text, encoding='utf-8')
    os.replace(tmp, path)
