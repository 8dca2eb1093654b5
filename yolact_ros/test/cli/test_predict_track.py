"""``yolact predict --track`` with the bundled model at its defaults: ids that persist."""

import json

import cv2
import pytest

from yolact_ros.cli.main import main
from yolact_ros.data.synthetic_sequence import write_sequence
from yolact_ros.weights import demo_weights

FRAMES = 8


@pytest.fixture(scope='module')
def sequence(tmp_path_factory):
    if not demo_weights().is_file():
        pytest.skip('the bundled demo model is missing')
    folder = tmp_path_factory.mktemp('sequence')
    write_sequence(folder, num_frames=FRAMES, size=256, seed=100)
    return folder


def _ids_per_frame(predictions, frames):
    per_frame = [set() for _ in range(frames)]
    for prediction in predictions:
        assert isinstance(prediction['track_id'], int) and prediction['track_id'] >= 0
        if prediction['track_id']:
            per_frame[prediction['image_id']].add(prediction['track_id'])
    return per_frame


def test_folder_of_frames_keeps_ids_across_frames(sequence, tmp_path, capsys):
    out = tmp_path / 'out'
    assert main(['predict', str(sequence / 'frames'), '--output', str(out), '--track',
                 '--device', 'cpu']) == 0, capsys.readouterr().err
    predictions = json.loads((out / 'predictions.json').read_text())
    per_frame = _ids_per_frame(predictions, FRAMES)
    assert set.intersection(*per_frame)  # a steadily moving object keeps its id
    assert len(list(out.glob('*.png'))) == FRAMES


def test_image_files_given_one_by_one_are_one_stream(sequence, tmp_path):
    files = [str(path) for path in sorted((sequence / 'frames').glob('*.png'))[:4]]
    assert main(['predict', *files, '--output', str(tmp_path), '--track', '--fps', '15',
                 '--device', 'cpu']) == 0
    predictions = json.loads((tmp_path / 'predictions.json').read_text())
    assert set.intersection(*_ids_per_frame(predictions, 4))


def test_video_keeps_ids_and_plain_predict_has_none(sequence, tmp_path, capsys):
    video = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 30, (256, 256))
    for path in sorted((sequence / 'frames').glob('*.png')):
        writer.write(cv2.imread(str(path)))
    writer.release()
    assert main(['predict', str(video), '--output', str(tmp_path / 'a'), '--track',
                 '--device', 'cpu']) == 0
    predictions = json.loads((tmp_path / 'a' / 'predictions.json').read_text())
    assert set.intersection(*_ids_per_frame(predictions, FRAMES))
    assert (tmp_path / 'a' / 'clip_overlay.mp4').is_file()
    assert main(['predict', str(video), '--output', str(tmp_path / 'b'), '--max-frames', '1',
                 '--device', 'cpu']) == 0
    predictions = json.loads((tmp_path / 'b' / 'predictions.json').read_text())
    assert predictions and all('track_id' not in p for p in predictions)


def test_bad_fps_is_one_line_exit_2(sequence, capsys):
    assert main(['predict', str(sequence / 'frames'), '--track', '--fps', '0']) == 2
    err = capsys.readouterr().err.strip()
    assert err == 'yolact predict: error: --fps must be > 0, got 0.0'
