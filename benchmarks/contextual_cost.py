"""Share of a CPU training step spent on the contextual loss (target: under 10 %).

    # yolact_resnet18 at input 160 (the demo recipe), batch 8, synthetic scenes, 1 thread
    PYTHONPATH=yolact_ros .venv/bin/python benchmarks/contextual_cost.py
    PYTHONPATH=yolact_ros .venv/bin/python benchmarks/contextual_cost.py --steps 9 --threads 2

A full step is forward, the criterion, backward and an SGD step, with the contextual loss
(weight 0.1, defaults of :class:`~yolact_ros.losses.LossConfig`) and without it (weight 0). The
two kinds of step alternate, so a load change on a shared machine hits both alike; the medians
are printed, and their difference as a share of the step with the loss. Because that difference
is small next to the step's noise, the loss is also timed alone: ``contextual_loss`` forward and
backward on the step's prototypes (detached), and its share of the median step.
"""

import argparse
from dataclasses import replace
import statistics
import time
from typing import List, Tuple

import numpy as np
import torch

from yolact_ros.config import get_config
from yolact_ros.data.synthetic import CATEGORY_IDS, CLASS_NAMES, random_scene
from yolact_ros.data.transforms import to_network_input
from yolact_ros.losses import build_criterion, LossConfig, LossWeights, weighted_total
from yolact_ros.losses.contextual import contextual_loss
from yolact_ros.losses.criterion import downsample_masks
from yolact_ros.modeling import build_model


def synthetic_batch(size: int, batch: int, seed: int, pixel_mean: tuple,
                    pixel_std: tuple) -> Tuple[torch.Tensor, List[dict]]:
    """Return ``float32[N, 3, S, S]`` images and ``N`` targets of random synthetic scenes."""
    rng = np.random.default_rng(seed)
    images, targets = [], []
    label_of = {category: index for index, category in enumerate(CATEGORY_IDS)}
    for _ in range(batch):
        scene = random_scene(rng, size, size)
        images.append(to_network_input(scene.image, pixel_mean, pixel_std))
        masks = np.stack([i.mask for i in scene.instances]) if scene.instances else \
            np.zeros((0, size, size), bool)
        boxes = []
        for mask in masks:
            rows, columns = np.nonzero(mask)
            boxes.append([columns.min(), rows.min(), columns.max() + 1, rows.max() + 1])
        targets.append({
            'boxes': torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4) / size,
            'labels': torch.tensor([label_of[i.category_id] for i in scene.instances],
                                   dtype=torch.int64),
            'masks': torch.from_numpy(masks.astype(np.uint8))})
    return torch.stack(images), targets


def main() -> None:
    """Time training steps with and without the contextual loss and print the share."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default='yolact_resnet18')
    parser.add_argument('--input-size', type=int, default=160)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--steps', type=int, default=5, help='timed steps of each kind')
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = replace(get_config(args.config), input_size=args.input_size).with_classes(
        CLASS_NAMES, CATEGORY_IDS)
    model = build_model(config).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    images, targets = synthetic_batch(args.input_size, args.batch, 0, config.pixel_mean_bgr,
                                      config.pixel_std_bgr)
    loss_config = LossConfig()
    with_loss = build_criterion(loss_config)
    without = build_criterion(replace(loss_config, weights=LossWeights(context=0.0)))

    def step(criterion: torch.nn.Module) -> Tuple[float, torch.Tensor]:
        start = time.perf_counter()
        outputs = model(images)
        losses = criterion(outputs, targets)
        optimizer.zero_grad(set_to_none=True)
        weighted_total(losses, loss_config.weights).backward()
        optimizer.step()
        return time.perf_counter() - start, outputs['proto'].detach()

    def loss_alone(proto: torch.Tensor) -> float:
        proto = proto.float().requires_grad_(True)
        start = time.perf_counter()
        masks = [downsample_masks(t['masks'], proto.shape[1:3]) for t in targets]
        contextual_loss(proto, masks, num_anchors=loss_config.context_samples,
                        bandwidth=loss_config.context_bandwidth,
                        neighbourhood=loss_config.context_neighbourhood).backward()
        return time.perf_counter() - start

    step(with_loss)  # warm-up
    step(without)
    times = {'with': [], 'without': [], 'alone': []}
    for _ in range(args.steps):
        seconds, proto = step(with_loss)
        times['with'].append(seconds)
        times['without'].append(step(without)[0])
        times['alone'].append(loss_alone(proto))
    median = {name: statistics.median(values) for name, values in times.items()}
    instances = sum(len(t['labels']) for t in targets)
    print(f'{args.config} input {args.input_size} (prototypes {config.proto_size}x'
          f'{config.proto_size}), batch {args.batch} ({instances} instances), '
          f'{args.threads} thread(s), median of {args.steps} steps')
    print(f'step with the contextual loss:    {1000 * median["with"]:8.1f} ms')
    print(f'step without it:                  {1000 * median["without"]:8.1f} ms')
    print(f'difference:                       {1000 * (median["with"] - median["without"]):8.1f}'
          f' ms = {100 * (median["with"] - median["without"]) / median["with"]:5.1f} % of the '
          f'step')
    print(f'contextual loss alone (fwd + bwd): {1000 * median["alone"]:7.1f} ms = '
          f'{100 * median["alone"] / median["with"]:5.1f} % of the step (target < 10 %)')


if __name__ == '__main__':
    main()
