"""Dataset specs: where a COCO-format dataset's images and annotations are.

A dataset is named by a small YAML file; paths in it are relative to the file::

    images: images               # directory of the image files
    annotations: annotations.json
    class_names: [circle, square]  # optional; overrides the JSON's category names

or, with splits (``class_names`` may sit at the top level)::

    train: {images: train/images, annotations: train/annotations.json}
    val: {images: val/images, annotations: val/annotations.json}

The flat form serves any split. A directory stands for its ``dataset.yaml``. ``coco2017`` is
predefined: ``$YOLACT_DATA/coco/{train2017,val2017}`` and
``$YOLACT_DATA/coco/annotations/instances_{train,val}2017.json`` (``YOLACT_DATA`` defaults to
``./data``).
"""

from dataclasses import dataclass
import os
from pathlib import Path
from typing import Optional, Tuple, Union

SPLITS = ('train', 'val', 'test')
_FIELDS = ('images', 'annotations', 'class_names')
PREDEFINED = ('coco2017',)


@dataclass(frozen=True)
class DatasetSpec:
    """A resolved dataset split.

    Attributes:
        name: the name or path the spec was resolved from, with the split (``coco2017:val``).
        images: directory the annotation file's ``file_name`` entries are relative to.
        annotations: COCO instances JSON.
        class_names: names overriding the JSON's category names (in category-id order), if given.
    """

    name: str
    images: Path
    annotations: Path
    class_names: Optional[Tuple[str, ...]] = None

    def check(self) -> 'DatasetSpec':
        """Raise ``FileNotFoundError`` naming the path if the images or annotations are missing."""
        if not self.annotations.is_file():
            raise FileNotFoundError(f'dataset {self.name}: annotation file {self.annotations} '
                                    'does not exist')
        if not self.images.is_dir():
            raise FileNotFoundError(f'dataset {self.name}: image directory {self.images} does '
                                    'not exist')
        return self


def data_root() -> Path:
    """Return the root of predefined datasets: ``$YOLACT_DATA`` or ``./data``."""
    return Path(os.environ.get('YOLACT_DATA', 'data')).expanduser()


def _predefined(name: str, split: str, root: Optional[Path]) -> DatasetSpec:
    """Return a predefined dataset's spec (only ``coco2017`` exists)."""
    if split not in ('train', 'val'):
        raise ValueError(f'dataset {name} has splits train and val, not {split!r}')
    coco = (root if root is not None else data_root()) / 'coco'
    return DatasetSpec(name=f'{name}:{split}', images=coco / f'{split}2017',
                       annotations=coco / 'annotations' / f'instances_{split}2017.json')


def _read_fields(entry: dict, where: str, base: Path, name: str) -> DatasetSpec:
    """Build a spec from a mapping with ``images``, ``annotations`` and maybe ``class_names``."""
    unknown = sorted(set(entry) - set(_FIELDS))
    if unknown:
        raise ValueError(f'{where}: unknown field(s) {unknown}; expected {list(_FIELDS)}')
    values = {}
    for key in ('images', 'annotations'):
        value = entry.get(key)
        if not isinstance(value, str) or not value:
            raise ValueError(f'{where}: field {key!r} must be a path string, got {value!r}')
        path = Path(value).expanduser()
        values[key] = path if path.is_absolute() else base / path
    class_names = entry.get('class_names')
    if class_names is not None:
        if (not isinstance(class_names, list) or not class_names
                or not all(isinstance(c, str) and c for c in class_names)):
            raise ValueError(f'{where}: field class_names must be a non-empty list of names, '
                             f'got {class_names!r}')
        if len(set(class_names)) != len(class_names):
            raise ValueError(f'{where}: class_names has duplicates: {class_names}')
        class_names = tuple(class_names)
    return DatasetSpec(name=name, images=values['images'], annotations=values['annotations'],
                       class_names=class_names)


def load_spec(path: Union[str, Path], split: str = 'train') -> DatasetSpec:
    """Read a dataset YAML (or a directory's ``dataset.yaml``) and return one split of it.

    Raises:
        FileNotFoundError: the YAML does not exist.
        ValueError: it is not valid YAML, or a field is missing or malformed (the message names
            the file and the field).
    """
    import yaml

    path = Path(path).expanduser()
    if path.is_dir():
        path = path / 'dataset.yaml'
    if not path.is_file():
        raise FileNotFoundError(f'dataset spec {path} does not exist')
    try:
        content = yaml.safe_load(path.read_text(encoding='utf-8'))
    except yaml.YAMLError as error:
        raise ValueError(f'{path}: not valid YAML: {error}') from None
    if not isinstance(content, dict):
        raise ValueError(f'{path}: expected a mapping with images and annotations, got '
                         f'{type(content).__name__}')
    base = path.parent
    name = f'{path}:{split}'
    split_keys = [key for key in content if key in SPLITS]
    if not split_keys:
        return _read_fields(content, str(path), base, name)
    unknown = sorted(set(content) - set(SPLITS) - {'class_names'})
    if unknown:
        raise ValueError(f'{path}: unknown field(s) {unknown}; a spec with splits has '
                         f'{list(SPLITS)} and class_names')
    if split not in content:
        raise ValueError(f'{path}: no split {split!r}; it has {split_keys}')
    entry = content[split]
    if not isinstance(entry, dict):
        raise ValueError(f'{path}: split {split!r} must be a mapping with images and '
                         f'annotations, got {entry!r}')
    if 'class_names' in content and 'class_names' not in entry:
        entry = dict(entry, class_names=content['class_names'])
    return _read_fields(entry, f'{path} [{split}]', base, name)


def resolve_dataset(name_or_path: Union[str, Path], split: str = 'train', *,
                    root: Optional[Path] = None, check: bool = True) -> DatasetSpec:
    """Return the spec of a predefined dataset (``coco2017``) or of a dataset YAML / directory.

    Args:
        name_or_path: ``'coco2017'``, a YAML file, or a directory holding ``dataset.yaml``.
        split: ``'train'`` or ``'val'`` (``'test'`` for YAMLs that define it).
        root: data root for predefined datasets (default :func:`data_root`).
        check: raise ``FileNotFoundError`` if the images or annotations are missing.
    """
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
    if str(name_or_path) in PREDEFINED:
        spec = _predefined(str(name_or_path), split, root)
        if check and not spec.annotations.is_file():
            raise FileNotFoundError(
                f'dataset {spec.name}: {spec.annotations} does not exist; put COCO 2017 under '
                f'{spec.images.parent} or set YOLACT_DATA to the directory holding coco/')
    else:
        path = Path(name_or_path).expanduser()
        if not path.exists() and path.suffix not in ('.yaml', '.yml') and os.sep not in str(
                name_or_path):
            raise ValueError(f'unknown dataset {str(name_or_path)!r}: not one of {PREDEFINED} '
                             'and no such YAML file or directory')
        spec = load_spec(path, split)
    return spec.check() if check else spec
