"""Draw the README's 3D picture: a rendered RGB-D test scene through the bundled model.

    PYTHONPATH=yolact_ros .venv/bin/python benchmarks/depth_3d.py   # -> benchmarks/depth_3d.png

The scene is the ROS tests' (``yolact_ros/test/ros/depth_scene.py``): demo shapes as flat
cut-outs at 1.2, 1.6 and 2.0 m in front of a wall at 3 m. Left: the overlay of the bundled model's
detections. Right: each instance's kept points (mask eroded by 2 px, ray outliers removed), its
axis-aligned box and centroid (as the node publishes them on ``points``, ``markers`` and
``detections_3d``), and the true centroid; the printed errors are the centroid distances.
"""

import argparse
import itertools
from pathlib import Path
import sys
from typing import List, Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'yolact_ros' / 'test' / 'ros'))


def box_edges(center: np.ndarray, size: np.ndarray) -> List[np.ndarray]:
    """Return the 12 edges ``[2, 3]`` of an axis-aligned box: corners one sign apart."""
    signs = np.array(list(itertools.product((-1, 1), repeat=3)))
    corners = center + signs * size / 2
    return [corners[[a, b]] for a in range(8) for b in range(a + 1, 8)
            if np.count_nonzero(signs[a] != signs[b]) == 1]


def main(argv: Optional[List[str]] = None) -> None:
    """Render, segment, back-project and plot one scene."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seed', type=int, default=1, help='scene seed (as the tests)')
    parser.add_argument('--out', type=Path, default=ROOT / 'benchmarks' / 'depth_3d.png')
    args = parser.parse_args(argv)

    import cv2
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from depth_scene import CAMERA, rgbd_scene

    from yolact_ros.geometry import instances_3d
    from yolact_ros.inference import Segmenter
    from yolact_ros.ros.params import NodeParams
    from yolact_ros.visualize import class_color, draw_overlay
    from yolact_ros.weights import demo_weights

    rgbd = rgbd_scene(args.seed)
    segmenter = Segmenter.from_weights(demo_weights(), device='cpu',
                                       postprocess=NodeParams().postprocess())
    detections = segmenter(rgbd.scene.image)
    geometry = instances_3d(detections.mask_windows, rgbd.depth_mm, CAMERA)
    figure = plt.figure(figsize=(9, 4.2), dpi=90)
    image = figure.add_subplot(1, 2, 1)
    image.imshow(cv2.cvtColor(draw_overlay(rgbd.scene.image, detections), cv2.COLOR_BGR2RGB))
    image.set_title('overlay (bundled demo model, node defaults)', fontsize=9)
    image.axis('off')
    axes = figure.add_subplot(1, 2, 2, projection='3d')
    truth = {shape.category_id: c for shape, c in zip(rgbd.scene.instances, rgbd.centroids)}
    for i, item in enumerate(geometry):
        if not item.reliable:
            continue
        blue, green, red = class_color(int(detections.class_ids[i]))
        color = (red / 255, green / 255, blue / 255)
        points = item.points[::9]  # x right, y down, z forward -> plot x, z, -y
        axes.scatter(points[:, 0], points[:, 2], -points[:, 1], s=0.3, color=color)
        for edge in box_edges(item.box_center, np.maximum(item.box_size, 1e-3)):
            axes.plot(edge[:, 0], edge[:, 2], -edge[:, 1], color=color, linewidth=0.8)
        x, y, z = item.centroid
        axes.scatter([x], [z], [-y], marker='o', s=18, color='black')
        error = ''
        if int(detections.category_ids[i]) in truth:
            true = truth[int(detections.category_ids[i])]
            axes.scatter([true[0]], [true[2]], [-true[1]], marker='x', s=30, color='red')
            error = f' {np.linalg.norm(item.centroid - true) * 100:.1f} cm'
        axes.text(x, z, -y + 0.12, f'{detections.class_names[i]}{error}', fontsize=7)
        print(f'{detections.class_names[i]}: {item.count} points, centroid '
              f'{np.round(item.centroid, 3).tolist()} m, error{error or " n/a"}')
    axes.set_xlabel('x (m)', fontsize=8)
    axes.set_ylabel('z, forward (m)', fontsize=8)
    axes.set_zlabel('-y, up (m)', fontsize=8)
    axes.tick_params(labelsize=6)
    axes.view_init(elev=18, azim=-62)
    axes.set_title('points, boxes, centroids (o) and truth (x)', fontsize=9)
    figure.tight_layout()
    figure.savefig(args.out)
    print(f'wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KB)')


if __name__ == '__main__':
    main()
