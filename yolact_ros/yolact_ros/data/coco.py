"""COCO-format instance segmentation dataset (pycocotools), validated at load time.

Bad annotations are found when the dataset is built, not inside a data-loader worker: each is
skipped with a logged warning naming its annotation id and image id, and recorded in
:attr:`CocoDataset.skipped`. A missing image file or an unreadable / malformed annotation file is
an error naming the path.

Crowd regions (``iscrowd``) are returned separately as ``crowd_boxes`` (upstream uses them to make
background priors that mostly lie inside a crowd neutral). Images without annotations are kept
(empty targets) unless ``skip_empty``.
"""

import contextlib
from dataclasses import dataclass
import io
import json
import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from yolact_ros.config import IMAGENET_MEAN_BGR, IMAGENET_STD_BGR
from yolact_ros.data.spec import DatasetSpec
from yolact_ros.data.transforms import fit_to_input, Sample, to_network_input, Transform

LOGGER = logging.getLogger(__name__)
# Individual warnings logged per dataset; the rest are only counted in the summary line.
_MAX_LOGGED = 20


@dataclass(frozen=True)
class SkippedAnnotation:
    """An annotation left out at load time, and why."""

    annotation_id: object
    image_id: object
    reason: str


def _load_json(path: Path) -> dict:
    """Read a COCO JSON, raising errors that name the file."""
    try:
        with open(path, 'rb') as stream:
            data = json.load(stream)
    except FileNotFoundError:
        raise FileNotFoundError(f'annotation file {path} does not exist') from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f'{path}: cannot read COCO annotations: {error}') from None
    if not isinstance(data, dict):
        raise ValueError(f'{path}: expected a JSON object with images, annotations and '
                         f'categories, got {type(data).__name__}')
    for key in ('images', 'categories'):
        if not isinstance(data.get(key), list):
            raise ValueError(f'{path}: field {key!r} must be a list')
    if not isinstance(data.get('annotations', []), list):
        raise ValueError(f"{path}: field 'annotations' must be a list")
    return data


def _segmentation_problem(segm: object, height: int, width: int) -> Optional[str]:
    """Return why a segmentation is unusable, or ``None`` if it is fine."""
    if isinstance(segm, list):
        if not segm:
            return 'empty polygon list'
        for polygon in segm:
            if not isinstance(polygon, list) or not all(
                    isinstance(v, (int, float)) for v in polygon):
                return 'polygon is not a list of numbers'
            if len(polygon) < 6 or len(polygon) % 2:
                return f'polygon with < 3 points ({len(polygon)} coordinates)'
        return None
    if isinstance(segm, dict):
        size, counts = segm.get('size'), segm.get('counts')
        if not isinstance(size, list) or len(size) != 2 or not all(
                isinstance(v, int) for v in size):
            return f'RLE without a valid size ({size!r})'
        if [int(size[0]), int(size[1])] != [height, width]:
            return f'mask size {size[0]}x{size[1]} does not match image size {height}x{width}'
        if isinstance(counts, list):
            if not all(isinstance(c, int) for c in counts):
                return 'uncompressed RLE counts are not all integers'
            if sum(counts) != height * width:
                return f'uncompressed RLE covers {sum(counts)} pixels, not {height * width}'
        elif not isinstance(counts, (str, bytes)):
            return 'RLE counts are neither a list nor a string'
        return None
    return f'unsupported segmentation type {type(segm).__name__}'


class CocoDataset(Dataset):
    """COCO-format instances, as network inputs and training targets.

    ``dataset[i]`` returns ``(image, target)``:

    - ``image``: ``float32[3, S, S]``, ``(x - mean) / std`` in BGR then BGR -> RGB.
    - ``target['boxes']``: ``float32[G, 4]`` x1 y1 x2 y2 relative to the input, in [0, 1].
    - ``target['labels']``: ``int64[G]`` 0-based contiguous labels.
    - ``target['masks']``: ``uint8[G, S, S]`` binary.
    - ``target['crowd_boxes']``: ``float32[C, 4]`` relative, crowd regions.
    - ``target['image_id']``: the COCO image id; ``target['orig_size']``: ``(H, W)``.

    With ``augmentation`` (e.g. :class:`~yolact_ros.data.transforms.SSDAugmentation`) item ``i``
    is augmented with ``numpy.random.default_rng((seed, epoch, i))``: call :meth:`set_epoch` each
    epoch; the result does not depend on which worker loads it. Without, the image is only
    resized (squashed, or with ``letterbox`` scaled to fit and padded) and normalised.

    Attributes:
        coco: a pycocotools ``COCO`` holding the *validated* annotations (skipped ones removed).
        image_ids: COCO image ids in index order.
        category_ids: dataset category id of each label (``category_ids[label]``).
        class_names: name of each label.
        label_map: category id -> label.
        skipped: every annotation left out, with the reason.
    """

    def __init__(self, images_dir: Union[str, Path], annotation_file: Union[str, Path], *,
                 input_size: int, pixel_mean_bgr: Sequence[float] = IMAGENET_MEAN_BGR,
                 pixel_std_bgr: Sequence[float] = IMAGENET_STD_BGR,
                 augmentation: Optional[Transform] = None,
                 class_names: Optional[Sequence[str]] = None, skip_empty: bool = False,
                 seed: int = 0, check_files: bool = True, letterbox: bool = False) -> None:
        from pycocotools.coco import COCO

        if input_size < 1:
            raise ValueError(f'input_size must be >= 1, got {input_size}')
        self.images_dir = Path(images_dir)
        self.annotation_file = Path(annotation_file)
        self.input_size = int(input_size)
        self.pixel_mean_bgr = tuple(float(v) for v in pixel_mean_bgr)
        self.pixel_std_bgr = tuple(float(v) for v in pixel_std_bgr)
        self.augmentation = augmentation
        self.seed = int(seed)
        self.epoch = 0
        self._resize = fit_to_input(self.input_size, self.pixel_mean_bgr, letterbox=letterbox,
                                    min_box_size=None)
        self.skipped: List[SkippedAnnotation] = []

        data = _load_json(self.annotation_file)
        self._read_categories(data['categories'], class_names)
        images = self._read_images(data['images'])
        annotations = self._validate_annotations(data.get('annotations', []), images)
        self._log_skipped()

        cleaned = dict(data, annotations=annotations)
        self.coco = COCO()
        self.coco.dataset = cleaned
        with contextlib.redirect_stdout(io.StringIO()):  # createIndex prints progress
            self.coco.createIndex()

        image_ids = [image['id'] for image in data['images']]
        if skip_empty:
            image_ids = [i for i in image_ids if self.coco.imgToAnns.get(i)]
        self.image_ids: List[object] = image_ids
        if check_files:
            self._check_files()

    @classmethod
    def from_spec(cls, spec: DatasetSpec, **kwargs) -> 'CocoDataset':
        """Build from a :class:`~yolact_ros.data.spec.DatasetSpec` (keywords as ``__init__``)."""
        kwargs.setdefault('class_names', spec.class_names)
        return cls(spec.images, spec.annotations, **kwargs)

    def _read_categories(self, categories: list, class_names: Optional[Sequence[str]]) -> None:
        """Map category ids (sorted) to contiguous labels and names."""
        ids, names = [], {}
        for category in categories:
            if not isinstance(category, dict) or 'id' not in category:
                raise ValueError(f'{self.annotation_file}: category without an id: {category!r}')
            cid = category['id']
            if cid in names:
                raise ValueError(f'{self.annotation_file}: duplicate category id {cid}')
            ids.append(cid)
            names[cid] = str(category.get('name', cid))
        if not ids:
            raise ValueError(f'{self.annotation_file}: no categories')
        ids.sort()
        if class_names is not None:
            if len(class_names) != len(ids):
                raise ValueError(
                    f'{self.annotation_file}: {len(ids)} categories {ids} but '
                    f'{len(class_names)} class names {list(class_names)}')
            names = dict(zip(ids, class_names))
        self.category_ids: Tuple[int, ...] = tuple(ids)
        self.class_names: Tuple[str, ...] = tuple(names[cid] for cid in ids)
        self.label_map: Dict[int, int] = {cid: label for label, cid in enumerate(ids)}

    def _read_images(self, images: list) -> Dict[object, dict]:
        """Index images by id; a malformed entry is an error naming it."""
        by_id = {}
        for image in images:
            if not isinstance(image, dict) or 'id' not in image:
                raise ValueError(f'{self.annotation_file}: image entry without an id: {image!r}')
            missing = [k for k in ('file_name', 'height', 'width') if k not in image]
            if missing:
                raise ValueError(f'{self.annotation_file}: image id {image["id"]} lacks '
                                 f'{missing}')
            if image['id'] in by_id:
                raise ValueError(f'{self.annotation_file}: duplicate image id {image["id"]}')
            by_id[image['id']] = image
        return by_id

    def _validate_annotations(self, annotations: list,
                              images: Dict[object, dict]) -> List[dict]:
        """Return the usable annotations, recording the others in :attr:`skipped`."""
        kept = []
        for ann in annotations:
            if not isinstance(ann, dict):
                self.skipped.append(SkippedAnnotation(None, None, f'not an object: {ann!r}'))
                continue
            reason = self._annotation_problem(ann, images)
            if reason is None:
                kept.append(ann)
            else:
                self.skipped.append(SkippedAnnotation(ann.get('id'), ann.get('image_id'),
                                                      reason))
        return kept

    def _annotation_problem(self, ann: dict, images: Dict[object, dict]) -> Optional[str]:
        """Return why an annotation is unusable, or ``None``."""
        image = images.get(ann.get('image_id'))
        if image is None:
            return 'unknown image id'
        if ann.get('category_id') not in self.label_map:
            return f'unknown category id {ann.get("category_id")!r}'
        bbox = ann.get('bbox')
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(
                isinstance(v, (int, float)) for v in bbox):
            return f'bbox is not [x, y, w, h]: {bbox!r}'
        if bbox[2] <= 0 or bbox[3] <= 0:
            return f'zero-area box {bbox}'
        if 'segmentation' not in ann:
            return 'no segmentation'
        return _segmentation_problem(ann['segmentation'], int(image['height']),
                                     int(image['width']))

    def _log_skipped(self) -> None:
        """Log each skipped annotation (up to a limit) and a summary."""
        for item in self.skipped[:_MAX_LOGGED]:
            LOGGER.warning('%s: skipping annotation id %s (image id %s): %s',
                           self.annotation_file, item.annotation_id, item.image_id, item.reason)
        if len(self.skipped) > _MAX_LOGGED:
            LOGGER.warning('%s: skipped %d annotations in all (first %d listed; see '
                           'CocoDataset.skipped)', self.annotation_file, len(self.skipped),
                           _MAX_LOGGED)

    def _check_files(self) -> None:
        """Raise ``FileNotFoundError`` listing missing image files."""
        missing = []
        for image_id in self.image_ids:
            path = self.image_path(image_id)
            if not path.is_file():
                missing.append(f'image id {image_id}: {path}')
        if missing:
            shown = '; '.join(missing[:5])
            more = f' (and {len(missing) - 5} more)' if len(missing) > 5 else ''
            raise FileNotFoundError(f'{self.annotation_file}: {len(missing)} image file(s) '
                                    f'missing: {shown}{more}')

    def image_path(self, image_id: object) -> Path:
        """Return the file of a COCO image id."""
        return self.images_dir / self.coco.imgs[image_id]['file_name']

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draw of this epoch (see the class docstring)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.image_ids)

    def load_image(self, index: int) -> np.ndarray:
        """Return the original image of item ``index``.

        Returns:
            ``uint8[H, W, 3]`` BGR.
        """
        image_id = self.image_ids[index]
        path = self.image_path(image_id)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise OSError(f'cannot read image id {image_id}: {path}')
        return image

    def load_sample(self, index: int) -> Sample:
        """Return item ``index`` at its original size, before any transform (boxes in pixels)."""
        image_id = self.image_ids[index]
        info = self.coco.imgs[image_id]
        image = self.load_image(index)
        height, width = image.shape[:2]
        anns = self.coco.imgToAnns.get(image_id, [])
        if (height, width) != (int(info['height']), int(info['width'])):
            LOGGER.warning('image id %s: file %s is %dx%d but the annotations say %dx%d; '
                           'its %d annotations are ignored', image_id, self.image_path(image_id),
                           height, width, info['height'], info['width'], len(anns))
            anns = []
        masks = np.zeros((len(anns), height, width), np.uint8)
        boxes = np.zeros((len(anns), 4), np.float32)
        for row, ann in enumerate(anns):
            masks[row] = self.coco.annToMask(ann)
            x, y, w, h = ann['bbox']
            boxes[row] = (x, y, x + w, y + h)
        boxes = np.clip(boxes, 0, [width, height, width, height]).astype(np.float32)
        labels = np.array([self.label_map[a['category_id']] for a in anns], np.int64)
        crowd = np.array([bool(a.get('iscrowd', 0)) for a in anns], bool)
        return Sample(image.astype(np.float32), masks, boxes, labels, crowd)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, dict]:
        if not -len(self) <= index < len(self):
            raise IndexError(f'index {index} out of range for {len(self)} images')
        index = index % len(self)
        sample = self.load_sample(index)
        orig_size = (sample.height, sample.width)
        if self.augmentation is not None:
            rng = np.random.default_rng((self.seed, self.epoch, index))
            sample = self.augmentation(sample, rng)
            if sample.height != self.input_size or sample.width != self.input_size:
                raise ValueError(f'augmentation returned {sample.height}x{sample.width}, expected '
                                 f'{self.input_size}x{self.input_size}; end it with Resize or '
                                 'Letterbox')
        else:
            sample = self._resize(sample)
        image = to_network_input(sample.image, self.pixel_mean_bgr, self.pixel_std_bgr)
        scale = np.array([sample.width, sample.height] * 2, np.float32)
        boxes = np.clip(sample.boxes / scale, 0.0, 1.0)
        objects = ~sample.crowd
        target = {
            'boxes': torch.from_numpy(boxes[objects]),
            'labels': torch.from_numpy(sample.labels[objects]),
            'masks': torch.from_numpy(np.ascontiguousarray(sample.masks[objects])),
            'crowd_boxes': torch.from_numpy(boxes[sample.crowd]),
            'image_id': self.image_ids[index],
            'orig_size': orig_size,
        }
        return image, target


def collate(batch: Sequence[Tuple[torch.Tensor, dict]]) -> Tuple[torch.Tensor, List[dict]]:
    """Stack images to ``float32[N, 3, S, S]``; keep targets as a list of ``N`` dicts."""
    images, targets = zip(*batch)
    return torch.stack(images, 0), list(targets)


def describe(dataset: CocoDataset) -> str:
    """One line about a dataset: images, instances, classes, skipped annotations."""
    instances = sum(len(dataset.coco.imgToAnns.get(i, [])) for i in dataset.image_ids)
    return (f'{dataset.annotation_file}: {len(dataset)} images, {instances} annotations, '
            f'{len(dataset.class_names)} classes, {len(dataset.skipped)} skipped')
