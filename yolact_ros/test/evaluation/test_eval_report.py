"""Tables, PR curves and the PR-curve picture of an evaluation."""

import json

import numpy as np
import pytest
# the hand-computed case of the sibling test module (pytest puts this folder on sys.path)
from test_coco_eval import detection, HALF_RECALL_AP, make_gt

from yolact_ros.evaluation import (
    evaluate_results, format_metrics, format_per_class_table, plot_pr_curves, pr_curves)


@pytest.fixture(scope='module')
def half_recall():
    """One hit, one false positive, one miss (see the hand-computed case)."""
    coco = make_gt([(5, 5, 10), (25, 25, 10)])
    return evaluate_results([detection(5, 5, 10, 0.9), detection(20, 0, 10, 0.8)], coco)


def test_pr_curves_of_the_hand_computed_case(half_recall):
    curves = pr_curves(half_recall)
    recall = curves['recall']
    assert recall.shape == (101,)
    for label in ('box', 'mask'):
        assert set(curves[label]) == {'IoU=.50', 'IoU=.75', 'IoU=.50:.95'}
        for values in curves[label].values():
            # precision 1 up to recall 0.5 (the hit), 0 beyond (the miss)
            np.testing.assert_allclose(values, np.where(recall <= 0.5 + 1e-9, 1.0, 0.0),
                                       rtol=0, atol=1e-12)
            assert values.mean() == pytest.approx(HALF_RECALL_AP)


def test_metrics_table_shows_undefined_values_as_a_dash(half_recall):
    lines = format_metrics(half_recall).splitlines()
    assert lines[0].split() == ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl']
    assert lines[1].split() == ['box', '0.505', '0.505', '0.505', '0.505', '-', '-']
    assert lines[2].split() == ['mask', '0.505', '0.505', '0.505', '0.505', '-', '-']


def test_per_class_table_has_one_row_per_category(half_recall):
    lines = format_per_class_table(half_recall).splitlines()
    assert lines[0].split() == ['class', 'id', 'inst', 'box', 'AP', 'mask', 'AP']
    assert lines[1].split() == ['square', '1', '2', '0.505', '0.505']
    assert lines[2].split() == ['circle', '2', '0', '-', '-']


def test_pr_curve_png_is_written(half_recall, tmp_path):
    path = plot_pr_curves(half_recall, tmp_path / 'sub' / 'pr.png', title='hand case')
    data = path.read_bytes()
    assert data[:8] == b'\x89PNG\r\n\x1a\n'
    width, height = int.from_bytes(data[16:20], 'big'), int.from_bytes(data[20:24], 'big')
    assert (width, height) == (1000, 440)


def test_to_dict_is_json_with_metrics_and_per_class(half_recall):
    values = json.loads(json.dumps(half_recall.to_dict()))
    assert values['num_images'] == 1 and values['num_results'] == 2
    assert values['mask']['AP'] == pytest.approx(HALF_RECALL_AP)
    assert values['per_class'][0] == {'category_id': 1, 'name': 'square',
                                      'box_ap': pytest.approx(HALF_RECALL_AP),
                                      'mask_ap': pytest.approx(HALF_RECALL_AP),
                                      'num_instances': 2}
    assert 'timing' not in values
