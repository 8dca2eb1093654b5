"""The ablation's own measurements: AP on heavily occluded instances, time per iteration."""

from pathlib import Path
import sys

import pytest

BENCHMARKS = Path(__file__).resolve().parents[3] / 'benchmarks'


@pytest.fixture(scope='module')
def report():
    if not BENCHMARKS.is_dir():
        pytest.skip('benchmarks/ is not beside the package (installed copy)')
    sys.path.insert(0, str(BENCHMARKS))
    import ablation_report
    yield ablation_report
    sys.path.remove(str(BENCHMARKS))


@pytest.fixture(scope='module')
def occluded_set(tmp_path_factory):
    """Heavily occluded synthetic scenes and their ground truth as perfect detections."""
    from yolact_ros.data import CocoDataset, generate_dataset, resolve_dataset

    out = tmp_path_factory.mktemp('occluded')
    generate_dataset(out, num_images=6, size=128, seed=4, occlusion='high')
    dataset = CocoDataset.from_spec(resolve_dataset(out, 'val'), input_size=32)
    truths = list(dataset.coco.dataset['annotations'])
    return dataset, truths


class Result:

    def __init__(self, results, image_ids):
        self.results, self.image_ids = results, image_ids


def as_results(annotations):
    return [{'image_id': a['image_id'], 'category_id': a['category_id'], 'score': 1.0,
             'bbox': a['bbox'], 'segmentation': a['segmentation']} for a in annotations]


def test_occluded_ap_counts_only_the_heavily_occluded(report, occluded_set):
    dataset, truths = occluded_set
    occluded = [a for a in truths if a['visible_fraction'] < report.OCCLUDED_BELOW]
    visible = [a for a in truths if a['visible_fraction'] >= report.OCCLUDED_BELOW]
    assert occluded and visible
    ids = dataset.image_ids

    def ap(annotations):
        return report.occluded_ap(Result(as_results(annotations), ids), dataset.coco)

    assert ap(truths) == pytest.approx(1.0)
    assert ap(occluded) == pytest.approx(1.0)  # missing the others costs nothing
    assert ap(visible) == pytest.approx(0.0)  # finding only them is worth nothing here
    assert 0.2 < ap(occluded[::2] + visible) < 0.8
    assert 'iscrowd' not in dataset.coco.dataset['annotations'][0] or not any(
        a['iscrowd'] for a in dataset.coco.dataset['annotations'])  # the input is left alone


def test_seconds_per_iteration_sums_resumed_sessions(report, tmp_path):
    start = 'INFO yolact_ros.engine.trainer: data: 10 training images, 2 validation\n'
    log = tmp_path / 'train.log'
    log.write_text(
        start + 'train: 0/300 [00:00<?, ?it/s]\rtrain: 100/300 [02:00<04:00, 1.2s/it]\r'
        'train: 200/300 [04:00<02:00, 1.2s/it]\n'
        + start + 'train: 200/300 [00:00<?, ?it/s]\rtrain: 300/300 [01:00<00:00, 0.6s/it]\n')
    assert report.seconds_per_iteration(log) == pytest.approx((240 + 60) / 300)
    assert report.seconds_per_iteration(tmp_path / 'missing.log') is None


def _finished_run(directory: Path, mask_aps) -> None:
    directory.mkdir(parents=True)
    (directory / 'model.safetensors').write_bytes(b'')
    rows = [f'{500 * (i + 1)},0.5,0.8,{ap},0.7' for i, ap in enumerate(mask_aps)]
    (directory / 'val.csv').write_text(
        'iteration,box_AP,box_AP50,mask_AP,mask_AP50\n' + '\n'.join(rows) + '\n')


def test_sweep_scores_each_point_by_its_last_validation_against_the_seed_spread(
        report, tmp_path):
    import contextual_sweep as sweep

    for seed, ap in zip(sweep.CENTRE_SEEDS, (0.50, 0.52, 0.54)):  # mean 0.52, std 0.02
        _finished_run(tmp_path / 'runs' / f'both_s{seed}', [0.1, ap])
    _finished_run(tmp_path / 'sweep' / 'w0.3_s0', [0.9, 0.2, 0.56])
    (tmp_path / 'sweep' / 'h0.2_s0').mkdir(parents=True)  # unfinished: not in the table
    table = sweep.rows(tmp_path)
    assert [row['name'] for row in table] == ['centre (both)', 'w0.3']
    assert table[0]['mask_AP'] == [0.50, 0.52, 0.54]
    assert table[1]['mask_AP'] == [0.56] and table[1]['weight'] == 0.3
    lines = sweep.markdown(table).splitlines()
    assert lines[2].endswith('| 0.520 ± 0.020 (0.500, 0.520, 0.540) | - |')
    assert lines[3].endswith('| 0.560 | +2.0 |')
    sweep.plot(table, tmp_path / 'sweep.png')
    assert (tmp_path / 'sweep.png').stat().st_size > 0
