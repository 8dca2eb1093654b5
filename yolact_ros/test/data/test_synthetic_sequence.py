"""Synthetic tracking sequences (``yolact synth --sequence``): ids, motion, occlusion, files."""

import argparse
import json

import numpy as np
import pytest

from yolact_ros.cli import synth
from yolact_ros.data.synthetic_sequence import sequence_frames, write_sequence


@pytest.fixture(scope='module')
def frames():
    """Return 120 frames of the seed-0 sequence at 128 px."""
    return list(sequence_frames(120, 128, seed=0))


def _centre(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


def test_an_id_keeps_its_class_and_moves_a_few_pixels_per_frame(frames):
    last = {}
    for frame in frames:
        assert len(set(frame.track_ids.tolist())) == len(frame.track_ids)  # unique in a frame
        for track_id, instance in zip(frame.track_ids.tolist(), frame.instances):
            if track_id in last and last[track_id][0] == frame.index - 1:
                _, category, centre, fraction = last[track_id]
                assert instance.category_id == category
                if fraction > 0.95 and instance.visible_fraction > 0.95:  # whole both times
                    assert np.linalg.norm(_centre(instance.mask) - centre) < 4.0
            last[track_id] = (frame.index, instance.category_id, _centre(instance.mask),
                              instance.visible_fraction)


def test_objects_enter_leave_and_occlude_each_other(frames):
    first_seen, last_seen = {}, {}
    for frame in frames:
        for track_id in frame.track_ids.tolist():
            first_seen.setdefault(track_id, frame.index)
            last_seen[track_id] = frame.index
    assert any(index > 0 for index in first_seen.values())  # entered later
    assert any(index < len(frames) - 1 for index in last_seen.values())  # left
    assert sorted(first_seen) == list(range(1, len(first_seen) + 1))  # ids from 1, in order
    occluded = [i for frame in frames for i in frame.instances if i.visible_fraction < 0.7]
    assert len(occluded) >= 5
    assert max(len(frame.track_ids) for frame in frames) >= 3


def test_sequence_is_a_function_of_the_seed():
    one = list(sequence_frames(5, 64, seed=4))
    two = list(sequence_frames(5, 64, seed=4))
    other = list(sequence_frames(5, 64, seed=5))
    for a, b in zip(one, two):
        assert np.array_equal(a.image, b.image) and np.array_equal(a.track_ids, b.track_ids)
    assert not np.array_equal(one[0].image, other[0].image)
    with pytest.raises(ValueError, match='num_frames'):
        next(sequence_frames(0, 64))


def test_synth_sequence_writes_frames_json_and_mot_text(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog='yolact')
    synth.register(parser.add_subparsers(dest='command'))
    out = tmp_path / 'seq'
    args = parser.parse_args(['synth', '--sequence', '--out', str(out), '--frames', '6',
                              '--size', '64', '--seed', '1'])
    assert args.func(args) == 0
    assert 'wrote 6 frames' in capsys.readouterr().out
    data = json.loads((out / 'gt.json').read_text())
    assert data['info']['fps'] == 30.0 and len(data['frames']) == 6
    assert all((out / f['file_name']).is_file() for f in data['frames'])
    objects = [(f['index'] + 1, o['track_id']) for f in data['frames'] for o in f['objects']]
    lines = (out / 'gt.txt').read_text().splitlines()
    assert [tuple(int(v) for v in line.split(',')[:2]) for line in lines] == objects
    first = data['frames'][0]['objects'][0]
    assert set(first) == {'track_id', 'category_id', 'bbox', 'segmentation', 'visible_fraction'}
    assert args.func(args) == 2 and 'overwrite' in capsys.readouterr().err
    args = parser.parse_args(['synth', '--sequence', '--out', str(tmp_path / 'b'),
                              '--frames', '0'])
    assert args.func(args) == 2 and 'num_frames' in capsys.readouterr().err


def test_written_sequence_matches_the_frames(tmp_path):
    summary = write_sequence(tmp_path, num_frames=3, size=64, seed=2)
    frames = list(sequence_frames(3, 64, seed=2))
    assert summary.boxes == sum(len(f.track_ids) for f in frames)
    assert summary.tracks == len({t for f in frames for t in f.track_ids.tolist()})


def test_camera_shaped_sequences(tmp_path, capsys):
    frames = list(sequence_frames(40, (160, 96), seed=3))
    assert all(f.image.shape == (96, 160, 3) for f in frames)
    assert all(i.mask.shape == (96, 160) for f in frames for i in f.instances)
    # Shapes are sized by the shorter side and spread over the whole width.
    centres = np.array([_centre(i.mask) for f in frames for i in f.instances])
    assert centres[:, 0].max() > 96 and len({t for f in frames for t in f.track_ids}) >= 3
    parser = argparse.ArgumentParser(prog='yolact')
    synth.register(parser.add_subparsers(dest='command'))
    args = parser.parse_args(['synth', '--sequence', '--out', str(tmp_path / 'cam'),
                              '--frames', '2', '--size', '160x96', '--seed', '3'])
    assert args.func(args) == 0
    data = json.loads((tmp_path / 'cam' / 'gt.json').read_text())
    assert data['info']['size'] == [160, 96]
    assert data['frames'][1]['objects'][0]['segmentation']['size'] == [96, 160]
    args = parser.parse_args(['synth', '--sequence', '--out', str(tmp_path / 'two'),
                              '--size', '64', '160x96'])
    assert args.func(args) == 2 and 'one --size' in capsys.readouterr().err
    with pytest.raises(ValueError, match='>= 32'):
        next(sequence_frames(1, (160, 16)))
