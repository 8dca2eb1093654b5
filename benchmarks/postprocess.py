#!/usr/bin/env python3
"""Postprocessing and the node's own work on fixed network outputs (the network runs once).

    python benchmarks/postprocess.py                      # yolact_resnet50, parity outputs, CPU
    python benchmarks/postprocess.py --repeats 50 --device cuda

Prints the median milliseconds of: Fast NMS (``Postprocessor.detect``), the Segmenter's whole
postprocessing (NMS, masks, copy to NumPy ``Detections``) and the node's work on the result
(rgb8 message to BGR, ``instances`` with BITMAP_ROI masks and ``detections``). Without the
network's time, changes to these stages show clearly; run it on two checkouts to compare them
(``PYTHONPATH=<checkout>/yolact_ros``). Weights and image as ``speed.py``.
"""

import argparse
import statistics
import time
from typing import List, Optional

from speed import load_network, message_types, node_work, synchronize


def median_ms(function, repeats: int, device: str) -> float:
    """Return the median wall time of ``function`` in ms (GPU work included)."""
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        function()
        synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main(argv: Optional[List[str]] = None) -> None:
    """Parse the options, run the network once, time the stages after it."""
    import torch

    from yolact_ros.config import PostprocessConfig
    from yolact_ros.inference import fold_batchnorm, Segmenter

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default='yolact_resnet50', help='model config name')
    parser.add_argument('--weights', help='checkpoint (default: as speed.py)')
    parser.add_argument('--image', help='BGR image file (default: as speed.py)')
    parser.add_argument('--device', default='cpu', help='cpu or cuda')
    parser.add_argument('--repeats', type=int, default=20, help='timed calls per stage')
    args = parser.parse_args(argv)

    model, config, image, label, threshold = load_network(args)
    segmenter = Segmenter(fold_batchnorm(model), config, device=args.device,
                          postprocess=PostprocessConfig(
                              candidate_threshold=threshold))
    postprocessor = segmenter._postprocessor  # a benchmark may reach inside
    size = image.shape[:2]
    with torch.inference_mode():
        outputs = {key: value.float()
                   for key, value in segmenter.model(segmenter.preprocessor([image])).items()}

    def postprocess():
        with torch.inference_mode():
            return segmenter._to_detections(postprocessor(outputs, [size])[0], size)

    def nms():
        with torch.inference_mode():
            return postprocessor.detect(outputs)

    detections = postprocess()
    binding, types = message_types()
    print(f'{config.name}, {label}; image {image.shape[1]}x{image.shape[0]}; {len(detections)} '
          f'detections; device {args.device}; median of {args.repeats}')
    rows = [('Fast NMS', nms, args.device),
            ('postprocessing (NMS, masks, copy)', postprocess, args.device),
            (f'node work ({binding})', node_work(types, image, detections), 'cpu')]
    for name, function, device in rows:
        print(f'  {median_ms(function, args.repeats, device):8.2f} ms  {name}')


if __name__ == '__main__':
    main()
