"""``yolact train``: train YOLACT on a COCO-format dataset (one process or several, torchrun)."""

import argparse
from pathlib import Path

from yolact_ros.cli import CommandError

DESCRIPTION = '''\
Train with upstream YOLACT's losses and schedule (SGD, lr 1e-3 per batch of 8 scaled by
batch/8, warm-up, x0.1 steps at 35/75/87.5/93.75 % of the run), plus optional channel attention
and the contextual loss. Writes OUT/checkpoints/*.pt (resumable), OUT/metrics.csv, OUT/val.csv,
OUT/loss_curve.png, OUT/tensorboard/ and, at the end, OUT/model.safetensors. Ctrl-C (or SIGTERM)
writes OUT/checkpoints/interrupt_*.pt first; --resume continues exactly where it stopped.

examples:
  # the bundled demo model: the modified YOLACT on camera-shaped synthetic shapes, CPU, from
  # random weights, trained at 192 px and run at 224 (held-out mask AP 0.715 on squares, 0.692
  # on 640x480 frames)
  yolact synth --out data/camera_train --images 4000 --size 256 320x240 384x216 --seed 10
  yolact synth --out data/camera_val --images 99 --size 256 320x240 384x216 --seed 1
  yolact train --config yolact_resnet18 --data data/camera_train --val-data data/camera_val \\
      --init none --input-size 192 --augment light --lr 8e-3 --clip-grad 10 --letterbox \\
      --attention --contextual-weight 0.3 --lr-steps 0.7 0.9 --iterations 3000 \\
      --val-every 500 --out runs/demo
  yolact weights resize runs/demo/model.safetensors --input-size 224 --output demo.safetensors
  # COCO on one GPU (ImageNet backbone), and on 4 GPUs
  yolact train --config yolact_resnet50 --data coco2017 --out runs/r50
  torchrun --nproc-per-node 4 -m yolact_ros.cli.main train --config yolact_resnet50 \\
      --data coco2017 --batch-size 32 --out runs/r50x4
  # continue an interrupted run
  yolact train --resume runs/synth/checkpoints/interrupt_0001234.pt
'''

# Options that may accompany --resume (they do not change what is computed).
RESUME_OPTIONS = ('out', 'device', 'workers', 'checkpoint_every', 'val_every', 'val_max_images')


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    parser = subparsers.add_parser(
        'train', help='train a model on a COCO-format dataset', description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', help='model config name, e.g. yolact_resnet50')
    parser.add_argument('--data', help='dataset YAML, directory holding dataset.yaml, or coco2017')
    parser.add_argument('--val-data', help='validation dataset (default: the val split of --data '
                        'when it has its own)')
    parser.add_argument('--out', type=Path,
                        help="run directory (default runs/train; with --resume, the checkpoint's"
                             ' run)')
    parser.add_argument('--resume', type=Path, metavar='CKPT',
                        help='continue a run from one of its checkpoints/*.pt')
    parser.add_argument('--init', choices=('official', 'imagenet', 'none'), default=None,
                        help='starting weights: official checkpoint (--weights), ImageNet '
                             "backbone (downloads torchvision's; default) or random")
    parser.add_argument('--weights', help='checkpoint for --init official (.pth or .safetensors)')
    parser.add_argument('--attention', action='store_true',
                        help='add channel attention after each ResNet stage')
    parser.add_argument('--shared-mlp', action='store_true',
                        help='attention with one MLP for both pooled branches (CBAM)')
    parser.add_argument('--contextual-weight', type=float, metavar='W',
                        help='weight of the contextual loss (default 0.1; 0 turns it off)')
    parser.add_argument('--contextual-bandwidth', type=float, metavar='H',
                        help='bandwidth h of its Gaussian kernel (default 0.1)')
    parser.add_argument('--letterbox', action='store_true',
                        help='keep the aspect ratio: scale images to fit the square input and '
                             'pad (default: squash them, as upstream); the model remembers it')
    parser.add_argument('--input-size', type=int, metavar='S',
                        help="network input side (default: the config's)")
    parser.add_argument('--batch-size', type=int, metavar='B',
                        help='global batch size (default 8; split over torchrun processes)')
    parser.add_argument('--iterations', type=int, metavar='N',
                        help='iterations (default 800k x 8 / batch, as upstream)')
    parser.add_argument('--lr', type=float, help='learning rate for a batch of 8 (default 1e-3; '
                        'scaled by batch/8)')
    parser.add_argument('--lr-steps', type=float, nargs='+', metavar='F',
                        help='fractions of the run where the lr drops x0.1 (default: '
                             "upstream's 0.35 0.75 0.875 0.9375)")
    parser.add_argument('--warmup', type=int, metavar='N',
                        help='warm-up iterations (default min(500, iterations/10))')
    parser.add_argument('--freeze-bn', choices=('auto', 'yes', 'no'), default=None,
                        help='freeze backbone BatchNorm (auto: when < 6 images per process, '
                             'as upstream)')
    parser.add_argument('--sync-bn', action='store_true',
                        help='synchronise BatchNorm statistics across processes')
    parser.add_argument('--no-amp', action='store_true', help='no mixed precision on CUDA')
    parser.add_argument('--augment', choices=('ssd', 'light', 'none'),
                        help="ssd: upstream's SSD augmentation (default); light: photometric "
                             'distortion and mirror only; none: resize only')
    parser.add_argument('--no-augment', action='store_true', help='the same as --augment none')
    parser.add_argument('--clip-grad', type=float, metavar='NORM',
                        help='clip the gradient norm to NORM')
    parser.add_argument('--checkpoint-every', type=int, metavar='N',
                        help='write a checkpoint every N iterations (default 1000)')
    parser.add_argument('--val-every', type=int, metavar='N',
                        help='validate every N iterations (default: only at the end)')
    parser.add_argument('--val-max-images', type=int, metavar='N',
                        help='validate on the first N images only')
    parser.add_argument('--workers', type=int, metavar='N',
                        help='data-loading processes (default 2)')
    parser.add_argument('--seed', type=int, help='random seed (default 0)')
    parser.add_argument('--device', help='auto (default), cpu, cuda or cuda:N')
    parser.add_argument('--export-half', action='store_true',
                        help='store the final model.safetensors in float16 (half the size)')
    parser.set_defaults(func=run)


def _given(args: argparse.Namespace) -> dict:
    """Options the user gave (not left at their 'unset' default), by destination name."""
    unset = (None, False)
    names = ('config', 'data', 'val_data', 'out', 'init', 'weights', 'attention', 'shared_mlp',
             'contextual_weight', 'contextual_bandwidth', 'letterbox', 'input_size',
             'batch_size', 'iterations', 'lr', 'lr_steps', 'warmup', 'freeze_bn', 'sync_bn',
             'no_amp', 'augment', 'no_augment', 'clip_grad', 'checkpoint_every', 'val_every',
             'val_max_images', 'workers', 'seed', 'device', 'export_half')
    return {name: getattr(args, name) for name in names
            if not any(getattr(args, name) is value for value in unset)}


def _runtime_overrides(given: dict) -> dict:
    """Map the options allowed with --resume to TrainConfig fields."""
    overrides = {name: given[name] for name in RESUME_OPTIONS if name in given}
    if 'out' in overrides:
        overrides['out_dir'] = str(overrides.pop('out'))
    return overrides


def build_config(args: argparse.Namespace):
    """Turn the options of a new run into a :class:`~yolact_ros.engine.TrainConfig`."""
    from dataclasses import replace

    from yolact_ros.config import get_config
    from yolact_ros.engine import TrainConfig
    from yolact_ros.engine.train_config import UPSTREAM_LR_STEPS
    from yolact_ros.losses import LossConfig, LossWeights

    given = _given(args)
    missing = [f'--{name}' for name in ('config', 'data') if name not in given]
    if missing:
        raise CommandError(f'{" and ".join(missing)} required (or --resume CKPT)')
    model = get_config(args.config)
    if args.input_size is not None:
        model = replace(model, input_size=args.input_size)
    if args.letterbox:
        model = replace(model, letterbox=True)
    if args.attention or args.shared_mlp:
        model = model.with_attention(True, shared_mlp=args.shared_mlp)
    weights = LossWeights()
    if args.contextual_weight is not None:
        weights = replace(weights, context=args.contextual_weight)
    losses = LossConfig(weights=weights)
    if args.contextual_bandwidth is not None:
        if not args.contextual_bandwidth > 0:
            raise CommandError('--contextual-bandwidth must be > 0, got '
                               f'{args.contextual_bandwidth}')
        losses = replace(losses, context_bandwidth=args.contextual_bandwidth)
    init = args.init or ('official' if args.weights else 'imagenet')
    fields = {
        'out_dir': str(args.out or Path('runs') / 'train'), 'val_data': args.val_data,
        'iterations': args.iterations, 'warmup_iterations': args.warmup,
        'lr_steps': tuple(args.lr_steps) if args.lr_steps else UPSTREAM_LR_STEPS,
        'clip_grad_norm': args.clip_grad, 'val_max_images': args.val_max_images,
        'init': init, 'init_weights': args.weights,
        'freeze_bn': {None: None, 'auto': None, 'yes': True, 'no': False}[args.freeze_bn],
        'sync_bn': args.sync_bn, 'amp': not args.no_amp,
        'augment': 'none' if args.no_augment else (args.augment or 'ssd'),
        'export_half': args.export_half,
    }
    for name, field_name in (('batch_size', 'batch_size'), ('lr', 'lr'),
                             ('checkpoint_every', 'checkpoint_every'),
                             ('val_every', 'val_every'), ('workers', 'workers'),
                             ('seed', 'seed'), ('device', 'device')):
        if getattr(args, name) is not None:
            fields[field_name] = getattr(args, name)
    return TrainConfig(model=model, data=args.data, losses=losses, **fields)


def run(args: argparse.Namespace) -> int:
    """Train; return 0, or 128 + signal number when a signal stopped the run."""
    from dataclasses import replace
    import shlex
    import sys

    from yolact_ros.checkpoint import CheckpointError
    from yolact_ros.engine import load_training_state, train, TrainConfig

    try:
        if args.resume is not None:
            given = _given(args)
            refused = sorted(set(given) - set(RESUME_OPTIONS))
            if refused:
                options = ', '.join('--' + name.replace('_', '-') for name in refused)
                raise CommandError(f'{options} cannot change on --resume: the run continues '
                                   'with the settings stored in the checkpoint')
            state = load_training_state(args.resume)
            config = TrainConfig.from_dict(state['train_config'])
            overrides = _runtime_overrides(given)
            overrides.setdefault('out_dir', str(args.resume.resolve().parent.parent))
            config = replace(config, **overrides)
        else:
            config = build_config(args)
        command = shlex.join(['yolact', *sys.argv[1:]]) if sys.argv else 'yolact train'
        result = train(config, resume=str(args.resume) if args.resume else None,
                       command=command)
    except (CheckpointError, ValueError, FileNotFoundError, FloatingPointError) as error:
        raise CommandError(str(error)) from None

    if result.rank != 0:
        return 128 + result.signal_number if result.interrupted and result.signal_number else 0
    terms = ', '.join(f'{name.replace("loss_", "")} {value:.4f}'
                      for name, value in result.losses.items())
    if result.interrupted:
        print(f'stopped at iteration {result.iteration}; checkpoint {result.checkpoint}')
        print(f'continue with: yolact train --resume {result.checkpoint}')
        return 128 + (result.signal_number or 0)
    print(f'trained to iteration {result.iteration} ({result.iterations_per_second:.2f} it/s); '
          f'last losses: {terms}')
    if result.validation:
        print(f'validation: box AP {result.validation["box_AP"]:.4f}, '
              f'mask AP {result.validation["mask_AP"]:.4f}')
    if result.weights is not None:
        print(f'weights: {result.weights}')
    return 0
