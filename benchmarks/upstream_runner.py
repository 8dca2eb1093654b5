"""Upstream YOLACT (a dbolya/yolact checkout the user gives) timed beside the project's backends.

``speed.py --upstream DIR`` calls :func:`side_by_side`. Nothing of upstream is copied here:
its modules are imported from ``DIR`` at run time (``sys.path``), and run as its ``eval.py``
runs an image: ``FastBaseTransform`` on the BGR frame as a float tensor, the network (whose
``forward`` ends in ``Detect``, Fast NMS), then ``postprocess`` at the image size (crop on,
score threshold 0, upstream's defaults) and the results as NumPy arrays.

Upstream hard-codes CUDA in three places that a CPU run meets: ``yolact.py`` calls
``torch.cuda.current_device()`` on import, and ``FastBaseTransform.__init__`` calls
``.cuda()`` on its mean and std. These are patched *only while upstream's modules are imported
and built* (:func:`cpu_only`); its code then runs unmodified on the CPU.
"""

import argparse
from contextlib import contextmanager
from pathlib import Path
import pickle
import statistics
import sys
import time
from typing import Callable, Dict, Iterator, List, Optional, Tuple
import warnings

import numpy as np
from variants import usage_error

# Parity tolerances of issue 17: boxes within 1 px, scores within 1e-3, mask IoU >= 0.99.
BOX_TOLERANCE = 1
SCORE_TOLERANCE = 1e-3
MASK_IOU = 0.99


@contextmanager
def cpu_only() -> Iterator[None]:
    """Let upstream's import-time and constructor-time CUDA calls pass on a CPU-only machine."""
    import torch

    saved = torch.cuda.current_device, torch.Tensor.cuda
    torch.cuda.current_device = lambda: 0
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    try:
        yield
    finally:
        torch.cuda.current_device, torch.Tensor.cuda = saved


def load_upstream(directory: Path, weights: Optional[str], config_name: str) -> Callable:
    """Return ``run(image_bgr) -> (classes, scores, boxes, masks)`` of upstream's eval path.

    Args:
        directory: a dbolya/yolact checkout (``yolact.py``, ``eval.py``, ``data/config.py``).
        weights: a checkpoint in upstream's format (the reference ``.pth`` files are).
        config_name: project config name; upstream's is ``<name>_config``.
    """
    import torch

    if weights is None:
        usage_error('--upstream needs weights upstream can load: --weights FILE.pth, or the '
                    'shared parity checkpoint (yolact_resnet50)')
    if not (directory / 'yolact.py').is_file() or not (directory / 'data' / 'config.py').is_file():
        usage_error(f'--upstream {directory}: not a dbolya/yolact checkout (no yolact.py or '
                    'data/config.py)')
    sys.path.insert(0, str(directory))
    with cpu_only(), warnings.catch_warnings():
        warnings.simplefilter('ignore')  # torch.jit deprecation notes on upstream's FPN
        from data.config import cfg, set_cfg
        from layers.output_utils import postprocess
        from utils.augmentations import FastBaseTransform
        from yolact import Yolact

        try:
            set_cfg(f'{config_name}_config')  # upstream evaluates the name
        except NameError:
            usage_error(f'--upstream: upstream has no config {config_name}_config (it has no '
                        'ResNet-18 backbone, for one)')
        net = Yolact()
        try:
            net.load_weights(str(weights))
        except (RuntimeError, OSError, KeyError, pickle.UnpicklingError) as error:
            usage_error(f'--upstream: upstream cannot load {weights}: '
                        f'{str(error).strip().splitlines()[0][:200]}')
        net.eval()
        net.detect.use_fast_nms = True  # eval.py's defaults
        net.detect.use_cross_class_nms = False
        cfg.mask_proto_debug = False
        transform = FastBaseTransform()

    def run(image: np.ndarray) -> Tuple[np.ndarray, ...]:
        height, width = image.shape[:2]
        with torch.no_grad():
            frame = torch.from_numpy(image).float()
            predictions = net(transform(frame.unsqueeze(0)))
            classes, scores, boxes, masks = postprocess(predictions, width, height,
                                                        crop_masks=True, score_threshold=0)
        return classes.numpy(), scores.numpy(), boxes.numpy(), masks.numpy() > 0.5

    return run


def match(ours, upstream: Tuple[np.ndarray, ...]) -> str:
    """Describe how the project's detections agree with upstream's, within the tolerances."""
    classes, scores, boxes, masks = upstream
    free = set(range(len(ours)))
    worst_box, worst_score, ious = 0.0, 0.0, []
    for index in range(len(classes)):
        candidates = [i for i in free if ours.class_ids[i] == classes[index]
                      and np.abs(ours.boxes[i] - boxes[index]).max() <= BOX_TOLERANCE]
        if not candidates:
            continue
        best = min(candidates, key=lambda i: abs(ours.scores[i] - scores[index]))
        free.remove(best)
        worst_box = max(worst_box, float(np.abs(ours.boxes[best] - boxes[index]).max()))
        worst_score = max(worst_score, float(abs(ours.scores[best] - scores[index])))
        mine = ours.masks[best]
        union = np.logical_or(mine, masks[index]).sum()
        ious.append(1.0 if union == 0 else np.logical_and(mine, masks[index]).sum() / union)
    within = (len(ious) == len(classes) == len(ours) and worst_score <= SCORE_TOLERANCE
              and (not ious or min(ious) >= MASK_IOU))
    iou = f'{min(ious):.4f}' if ious else 'n/a'
    return (f'{len(ious)}/{len(classes)} matched (class, box +-{BOX_TOLERANCE} px; {len(ours)} '
            f'found), max box diff {worst_box:.0f} px, max score diff {worst_score:.1e}, '
            f'min mask IoU {iou}: {"within" if within else "OUTSIDE"} parity tolerances')


def side_by_side(args: argparse.Namespace, upstream: Callable, segmenters: Dict[str, Callable],
                 image: np.ndarray) -> None:
    """Time ``upstream`` and each segmenter interleaved on ``image``; print ratios vs it."""
    runners = {'upstream': upstream}
    runners.update({name: (lambda s: lambda frame: s([frame])[0])(segmenter)
                    for name, segmenter in segmenters.items()})
    times: Dict[str, List[float]] = {name: [] for name in runners}
    results = {}
    for iteration in range(args.warmup + args.iterations):
        for name, runner in runners.items():
            start = time.perf_counter()
            results[name] = runner(image)
            if iteration >= args.warmup:
                times[name].append((time.perf_counter() - start) * 1e3)
    reference = statistics.median(times['upstream'])
    print(f'\nside by side with upstream ({args.upstream}), batch 1, end to end (BGR frame in, '
          'results as NumPy out), ms:')
    print('| path | p50 | min | max | vs upstream | agreement with upstream |')
    print('|---|---|---|---|---|---|')
    for name, values in times.items():
        agreement = ('reference' if name == 'upstream'
                     else match(results[name], results['upstream']))
        print(f'| {name} | {statistics.median(values):.1f} | {min(values):.1f} | '
              f'{max(values):.1f} | {reference / statistics.median(values):.2f}x | '
              f'{agreement} |')
