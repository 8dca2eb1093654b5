"""``yolact predict --track`` with the bundled model on a sequence whose tracks are known.

The user's path: ``yolact synth --sequence`` writes frames and their ground truth (track ids,
visible masks); ``yolact predict FRAMES --track`` writes ``predictions.json`` with a track id per
detection, at its defaults (the model's stored input size, score threshold 0.3, the node's
tracker settings). Scored as ``benchmarks/tracking.py`` scores it (mask IoU >= 0.5, objects
showing under 500 px ignored).
"""

from collections import defaultdict
import json
from pathlib import Path

import pytest

from yolact_ros.cli.main import main
from yolact_ros.weights import demo_weights

FRAMES = 90
MIN_AREA = 500  # px visible, as benchmarks/tracking.py at 256 px


def tracked_frames(predictions: list, gt: dict) -> list:
    """Group ``predictions.json``'s tracked detections (``track_id`` > 0) by ground-truth frame."""
    from yolact_ros.evaluation.mot import MotFrame

    by_name = defaultdict(list)
    for item in predictions:
        if item['track_id'] > 0:
            by_name[item['file_name']].append(item)
    names = [Path(frame['file_name']).name for frame in gt['frames']]
    assert set(by_name) <= set(names)
    return [MotFrame([i['track_id'] for i in by_name[name]],
                     [i['segmentation'] for i in by_name[name]]) for name in names]


def truth_frames(gt: dict) -> list:
    """Return ``gt.json``'s frames, objects showing under ``MIN_AREA`` px ignored."""
    from pycocotools import mask as mask_utils

    from yolact_ros.evaluation.mot import MotFrame

    return [MotFrame([o['track_id'] for o in frame['objects']],
                     [o['segmentation'] for o in frame['objects']],
                     ignored=[mask_utils.area(o['segmentation']) < MIN_AREA
                              for o in frame['objects']]) for frame in gt['frames']]


def test_predict_track_follows_the_shapes_of_a_sequence(tmp_path, capsys):
    if not demo_weights().is_file():
        pytest.skip('the bundled demo model is missing')
    pytest.importorskip('motmetrics')
    from yolact_ros.evaluation.mot import evaluate_mot

    sequence, out = tmp_path / 'sequence', tmp_path / 'out'
    assert main(['synth', '--sequence', '--out', str(sequence), '--frames', str(FRAMES),
                 '--seed', '202']) == 0
    assert main(['predict', str(sequence / 'frames'), '--track', '--device', 'cpu',
                 '--output', str(out)]) == 0, capsys.readouterr().err
    predictions = json.loads((out / 'predictions.json').read_text())
    gt = json.loads((sequence / 'gt.json').read_text())
    scores = evaluate_mot(truth_frames(gt), tracked_frames(predictions, gt))
    print(f'IDF1 {scores.idf1:.3f}, MOTA {scores.mota:.3f}, {scores.id_switches} id switches, '
          f'{scores.false_positives} false positives, {scores.misses} misses')
    # The shipped model at its run size: 0.899 at duplicate_iou 0.3 (0.831 at the earlier 0.5,
    # which tracked the model's second detections of a shape, 0.689 with the check off).
    assert scores.idf1 >= 0.85
    assert scores.id_switches <= 3  # 1 at the defaults, 2 at 0.5, 4 with the check off
