"""``yolact eval`` as a user runs it: a model, a results file, the predict round trip."""

import json

import pytest

from yolact_ros.cli.main import main


@pytest.fixture(scope='module')
def dataset_dir(tmp_path_factory):
    """Return a 3-image, 96 px synthetic dataset (seed 2) written by ``yolact synth``."""
    out = tmp_path_factory.mktemp('eval_cli') / 'synth'
    assert main(['synth', '--out', str(out), '--images', '3', '--size', '96', '--seed', '2']) == 0
    return out


def run_eval(args, capsys):
    code = main(['eval', *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_weights_then_results_round_trip_with_predict(dataset_dir, tiny_weights, tmp_path,
                                                      capsys):
    model_args = ['--weights', str(tiny_weights), '--device', 'cpu', '--score-threshold', '0']
    code, out, _ = run_eval(['--data', str(dataset_dir), '--output', str(tmp_path / 'a'),
                             *model_args], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split() == ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl']
    assert lines[2].startswith('box ') and lines[3].startswith('mask ')
    assert any(line.split()[:2] == ['ring', '7'] for line in lines)  # per-class table
    assert sorted(p.name for p in (tmp_path / 'a').iterdir()) == [
        'metrics.json', 'pr_curves.png', 'results.json']
    by_model = json.loads((tmp_path / 'a' / 'metrics.json').read_text())
    results = json.loads((tmp_path / 'a' / 'results.json').read_text())
    assert by_model['num_images'] == 3 and by_model['num_results'] == len(results) > 0

    # `yolact predict` on the image folder numbers images from 0 and records file names.
    assert main(['predict', str(dataset_dir / 'images'), '--output', str(tmp_path / 'p'),
                 *model_args]) == 0
    capsys.readouterr()
    predictions = tmp_path / 'p' / 'predictions.json'
    predicted = json.loads(predictions.read_text())
    assert {p['image_id'] for p in predicted} == {0, 1, 2}
    # the same detections in the same format; only the image numbering differs
    unnumbered = [dict(r, image_id=None) for r in results]
    assert [dict(p, image_id=None) for p in predicted] == unnumbered
    code, out, err = run_eval(['--results', str(predictions), '--data', str(dataset_dir),
                               '--output', str(tmp_path / 'b')], capsys)
    assert code == 0
    assert 'image ids taken from the dataset by file_name' in err
    by_file = json.loads((tmp_path / 'b' / 'metrics.json').read_text())
    for key in ('box', 'mask', 'per_class', 'num_images', 'num_results'):
        assert by_file[key] == by_model[key], key
    written = sorted(p.name for p in (tmp_path / 'b').iterdir())
    assert written == ['metrics.json', 'pr_curves.png']

    # eval's own results.json evaluates to the same numbers too
    code, _, _ = run_eval(['--results', str(tmp_path / 'a' / 'results.json'), '--data',
                           str(dataset_dir), '--output', str(tmp_path / 'c')], capsys)
    assert code == 0
    assert json.loads((tmp_path / 'c' / 'metrics.json').read_text())['mask'] == by_model['mask']


def test_max_images_and_benchmark(dataset_dir, tiny_weights, tmp_path, capsys):
    code, out, _ = run_eval(['--weights', str(tiny_weights), '--device', 'cpu', '--data',
                             str(dataset_dir), '--max-images', '2', '--benchmark', '--output',
                             str(tmp_path)], capsys)
    assert code == 0
    assert out.splitlines()[0].startswith(f'{dataset_dir / "dataset.yaml"}:val: 2 images, ')
    assert 'images/s (Segmenter: preprocess' in out
    metrics = json.loads((tmp_path / 'metrics.json').read_text())
    assert metrics['num_images'] == 2 and metrics['timing']['images_per_second'] > 0


def write(path, text):
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize('make_args, message', [
    (lambda d, t: ['--results', str(t / 'none.json')],
     'results file not found: {t}/none.json'),
    (lambda d, t: ['--results', write(t / 'bad.json', '[{"image_id": 1,')],
     '{t}/bad.json: not a readable JSON file: Expecting'),
    (lambda d, t: ['--results', write(t / 'obj.json', '{"a": 1}')],
     '{t}/obj.json: expected a JSON list of COCO results, got dict'),
    (lambda d, t: ['--results', write(t / 'ids.json', json.dumps([
        {'image_id': 99, 'category_id': 1, 'score': 0.5, 'bbox': [0, 0, 4, 4]}]))],
     '{t}/ids.json: result 0: image_id 99 is not an image of the ground truth '
     '(3 images, ids 1..3)'),
    (lambda d, t: ['--results', write(t / 'cats.json', json.dumps([
        {'image_id': 1, 'category_id': 2, 'score': 0.5, 'bbox': [0, 0, 4, 4]}]))],
     '{t}/cats.json: result 0: category_id 2 is not a ground-truth category '
     '(categories [1, 3, 5, 7, 9, 11])'),
    (lambda d, t: ['--results', write(t / 'names.json', json.dumps([
        {'file_name': 'other.png', 'image_id': 0, 'category_id': 1, 'score': 0.5,
         'bbox': [0, 0, 4, 4]},
        {'file_name': '000001.png', 'image_id': 1, 'category_id': 1, 'score': 0.5,
         'bbox': [0, 0, 4, 4]}]))],
     "{t}/names.json: file_name 'other.png' is not an image of the ground truth"),
    (lambda d, t: ['--results', str(t / 'x.json'), '--weights', str(t / 'w')],
     'give one of --weights (run a model) and --results (evaluate a results file), not both'),
    (lambda d, t: ['--results', str(t / 'x.json'), '--max-images', '0'],
     '--max-images must be >= 1, got 0'),
    (lambda d, t: ['--weights', str(t / 'nope.safetensors')],
     'weights file not found: {t}/nope.safetensors'),
])
def test_bad_input_is_one_line_and_exit_code_2(dataset_dir, tmp_path, capsys, make_args,
                                               message):
    args = make_args(dataset_dir, tmp_path)
    code, _, err = run_eval([*args, '--data', str(dataset_dir), '--output',
                             str(tmp_path / 'out')], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('yolact eval: error: ')
    assert message.format(t=tmp_path) in lines[0]


def test_unknown_dataset_is_one_line(tmp_path, capsys):
    code, _, err = run_eval(['--results', str(tmp_path / 'r.json'), '--data',
                             str(tmp_path / 'missing.yaml')], capsys)
    assert code == 2
    assert err.strip() == f'yolact eval: error: dataset spec {tmp_path / "missing.yaml"} does ' \
                          'not exist'


def test_without_weights_or_results_evaluates_the_bundled_model(dataset_dir, tmp_path, capsys):
    from yolact_ros.weights import demo_weights

    code, out, _ = run_eval(['--data', str(dataset_dir), '--output', str(tmp_path / 'out'),
                             '--device', 'cpu'], capsys)
    assert code == 0
    assert f'detections from {demo_weights()}' in out
    assert json.loads((tmp_path / 'out' / 'metrics.json').read_text())['source'] == str(
        demo_weights())
