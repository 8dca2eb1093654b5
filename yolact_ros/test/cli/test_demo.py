"""``yolact demo``: end to end with a given model, and the missing bundled model."""

import json

import cv2
import pytest

from yolact_ros.cli.demo import demo_ground_truth, DEMO_WEIGHTS
from yolact_ros.cli.main import main


def test_demo_with_the_tiny_model(tiny_weights, tmp_path, capsys):
    out = tmp_path / 'demo'
    code = main(['demo', '--weights', str(tiny_weights), '--frames', '3', '--output', str(out),
                 '--device', 'cpu'])
    printed = capsys.readouterr().out
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ['predictions.json', 'scene.mp4',
                                                     'scene_overlay.mp4']
    for name in ('scene.mp4', 'scene_overlay.mp4'):
        video = cv2.VideoCapture(str(out / name))
        assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
        assert (video.get(cv2.CAP_PROP_FRAME_WIDTH), video.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (
            640, 480)
    predictions = json.loads((out / 'predictions.json').read_text())
    assert {p['image_id'] for p in predictions} <= {0, 1, 2}
    assert {p['file_name'] for p in predictions} <= {'scene.mp4'}
    summary = printed.strip().splitlines()[-1]
    assert summary.startswith('Segmented 3 frames of a synthetic 640x480 scene with '
                              f'{tiny_weights.name} (yolact_resnet18) on cpu: '
                              f'{len(predictions)} detections')
    # the tiny model's classes are synthetic shapes, so the demo scores it against the scene
    assert "Against the scene's ground truth: mask AP " in summary
    assert f'overlay video: {out / "scene_overlay.mp4"}' in summary


def test_missing_bundled_model_is_one_clear_line(tmp_path, capsys, monkeypatch):
    weights_dir = tmp_path / 'weights'
    weights_dir.mkdir()
    (weights_dir / 'manifest.json').write_text('{"official": []}')
    monkeypatch.setenv('YOLACT_WEIGHTS_DIR', str(weights_dir))
    code = main(['demo', '--output', str(tmp_path / 'demo')])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [f'yolact demo: error: the bundled demo model {weights_dir / DEMO_WEIGHTS} is '
                   'missing; pass --weights FILE (.safetensors, upstream .pth, .onnx or .engine)']
    assert not (tmp_path / 'demo').exists()  # nothing written before the model loads


@pytest.mark.parametrize('args, message', [
    (['--frames', '0'], '--frames must be >= 1, got 0'),
    (['--weights', 'nope.safetensors'], 'weights file not found: nope.safetensors'),
])
def test_bad_arguments(args, message, capsys):
    assert main(['demo', *args]) == 2
    assert capsys.readouterr().err.strip() == f'yolact demo: error: {message}'


def test_demo_ground_truth_scores_itself_perfectly():
    from yolact_ros.evaluation import evaluate_results

    coco = demo_ground_truth(2)
    assert sorted(coco.imgs) == [0, 1]  # image id = frame index, as `segment_video` numbers
    assert coco.imgs[0]['width'] == 640 and coco.imgs[0]['height'] == 480
    perfect = [{'image_id': a['image_id'], 'category_id': a['category_id'], 'bbox': a['bbox'],
                'score': 1.0, 'segmentation': a['segmentation']}
               for a in coco.dataset['annotations']]
    result = evaluate_results(perfect, coco)
    assert result.box['AP'] == pytest.approx(1.0) and result.mask['AP'] == pytest.approx(1.0)
