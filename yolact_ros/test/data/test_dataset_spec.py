"""Dataset specs: YAML forms, relative paths, coco2017, errors that name the file and field."""

from pathlib import Path

import pytest

from yolact_ros.data.coco import CocoDataset
from yolact_ros.data.spec import load_spec, resolve_dataset


def _touch_dataset(root: Path, images: str = 'images', annotations: str = 'ann.json') -> None:
    (root / images).mkdir(parents=True, exist_ok=True)
    (root / annotations).parent.mkdir(parents=True, exist_ok=True)
    (root / annotations).write_text('{}')


def test_flat_spec_paths_are_relative_to_the_yaml(tmp_path):
    _touch_dataset(tmp_path / 'set')
    (tmp_path / 'set/dataset.yaml').write_text(
        'images: images\nannotations: ann.json\nclass_names: [a, b]\n')
    spec = resolve_dataset(tmp_path / 'set/dataset.yaml', 'val')
    assert spec.images == tmp_path / 'set/images'
    assert spec.annotations == tmp_path / 'set/ann.json'
    assert spec.class_names == ('a', 'b')
    assert resolve_dataset(tmp_path / 'set', 'train').annotations == spec.annotations


def test_split_spec_selects_the_split(tmp_path):
    _touch_dataset(tmp_path, 'tr', 'tr.json')
    _touch_dataset(tmp_path, 'va', 'va.json')
    (tmp_path / 'd.yaml').write_text(
        'class_names: [x]\ntrain: {images: tr, annotations: tr.json}\n'
        'val: {images: va, annotations: va.json}\n')
    assert resolve_dataset(tmp_path / 'd.yaml', 'val').images == tmp_path / 'va'
    assert resolve_dataset(tmp_path / 'd.yaml', 'train').class_names == ('x',)
    with pytest.raises(ValueError, match=r"d\.yaml: no split 'test'"):
        resolve_dataset(tmp_path / 'd.yaml', 'test')


@pytest.mark.parametrize('text, message', [
    ('images: images\n', "field 'annotations'"),
    ('images: images\nannotations: 3\n', "field 'annotations'"),
    ('images: i\nannotations: a.json\nlabels: [a]\n', r"unknown field\(s\) \['labels'\]"),
    ('images: i\nannotations: a.json\nclass_names: a\n', 'class_names must be'),
    ('- just\n- a list\n', 'expected a mapping'),
    ('images: [unclosed\n', 'not valid YAML'),
])
def test_malformed_spec_errors_name_the_file_and_field(tmp_path, text, message):
    path = tmp_path / 'bad.yaml'
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        load_spec(path)
    assert 'bad.yaml' in str(info.value)


def test_missing_files_are_reported(tmp_path):
    (tmp_path / 'd.yaml').write_text('images: images\nannotations: ann.json\n')
    with pytest.raises(FileNotFoundError, match=r'ann\.json'):
        resolve_dataset(tmp_path / 'd.yaml')
    assert resolve_dataset(tmp_path / 'd.yaml', check=False).images == tmp_path / 'images'
    with pytest.raises(FileNotFoundError, match='nope.yaml'):
        resolve_dataset(tmp_path / 'nope.yaml')
    with pytest.raises(ValueError, match='unknown dataset'):
        resolve_dataset('coco2014')


def test_coco2017_uses_the_standard_layout(tmp_path, monkeypatch):
    monkeypatch.setenv('YOLACT_DATA', str(tmp_path))
    with pytest.raises(FileNotFoundError, match='YOLACT_DATA'):
        resolve_dataset('coco2017', 'val')
    _touch_dataset(tmp_path / 'coco', 'val2017', 'annotations/instances_val2017.json')
    spec = resolve_dataset('coco2017', 'val')
    assert spec.images == tmp_path / 'coco/val2017'
    assert spec.annotations == tmp_path / 'coco/annotations/instances_val2017.json'
    train = resolve_dataset('coco2017', 'train', check=False)
    assert train.annotations.name == 'instances_train2017.json'


def test_synthetic_spec_builds_a_dataset(synth_dir):
    spec = resolve_dataset(synth_dir, 'train')
    dataset = CocoDataset.from_spec(spec, input_size=64)
    assert dataset.class_names == ('circle', 'square', 'triangle', 'ring', 'star', 'ellipse')
    assert len(dataset) == 4
