"""``yolact synth`` subcommand."""

import argparse
import json

from yolact_ros.cli import synth


def _parse(argv):
    parser = argparse.ArgumentParser(prog='yolact')
    synth.register(parser.add_subparsers(dest='command'))
    return parser.parse_args(argv)


def test_synth_writes_a_dataset_and_prints_a_summary(tmp_path, capsys):
    out = tmp_path / 'set'
    args = _parse(['synth', '--out', str(out), '--images', '3', '--size', '64', '--seed', '2',
                   '--occlusion', 'high'])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    data = json.loads((out / 'annotations.json').read_text())
    assert len(data['images']) == 3 and len(list((out / 'images').glob('*.png'))) == 3
    assert f'wrote 3 images, {len(data["annotations"])} instances' in printed
    assert 'mean visible fraction 0.' in printed and str(out / 'dataset.yaml') in printed
    # A second run refuses to overwrite unless asked.
    assert args.func(args) == 2
    assert 'overwrite' in capsys.readouterr().err
    args = _parse(['synth', '--out', str(out), '--images', '1', '--size', '64', '--overwrite'])
    assert args.func(args) == 0


def test_synth_rejects_bad_values(tmp_path, capsys):
    args = _parse(['synth', '--out', str(tmp_path), '--images', '0'])
    assert args.func(args) == 2
    assert 'num_images' in capsys.readouterr().err
