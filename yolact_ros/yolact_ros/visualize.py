"""Draw detections over an image (overlay images, videos and the node's ``overlay`` topic)."""

from typing import Mapping, Optional

import numpy as np

from yolact_ros.structures import Detections


def class_color(class_id: int) -> tuple:
    """Return a stable, distinct BGR colour for a class id."""
    # Golden-ratio hue steps spread consecutive ids around the colour wheel.
    hue = (class_id * 0.618033988749895) % 1.0
    sector, fraction = divmod(hue * 6.0, 1.0)
    ramp_down, ramp_up = int(255 * (1 - fraction)), int(255 * fraction)
    rgb = [(255, ramp_up, 0), (ramp_down, 255, 0), (0, 255, ramp_up),
           (0, ramp_down, 255), (ramp_up, 0, 255), (255, 0, ramp_down)][int(sector) % 6]
    return rgb[2], rgb[1], rgb[0]


def track_color(track_id: int) -> tuple:
    """Return a stable BGR colour for a track id (neighbouring ids differ)."""
    return class_color(int(track_id) * 7 + 3)


def _detection_color(detections: Detections, index: int,
                     track_ids: Optional[np.ndarray]) -> tuple:
    """Return detection ``index``'s colour: its track's when tracked, else its class's."""
    if track_ids is not None and track_ids[index] > 0:
        return track_color(int(track_ids[index]))
    return class_color(int(detections.class_ids[index]))


def draw_overlay(image_bgr: np.ndarray, detections: Detections, *, alpha: float = 0.45,
                 draw_boxes: bool = True, draw_labels: bool = True,
                 track_ids: Optional[np.ndarray] = None,
                 trails: Optional[Mapping[int, np.ndarray]] = None) -> np.ndarray:
    """Return a copy of ``uint8[H, W, 3]`` BGR ``image_bgr`` with masks, boxes and labels drawn.

    Detections are drawn lowest score first so the most confident ones end up on top.

    Args:
        image_bgr: ``uint8[H, W, 3]``.
        detections: the image's ``D`` detections.
        alpha: opacity of the masks.
        draw_boxes: draw each box.
        draw_labels: draw ``class score`` above each box (``#track class score`` when tracked).
        track_ids: ``int[D]`` track ids (``0``: not tracked); a tracked detection is coloured by
            its track, not its class.
        trails: ``{track id: float[n, 2]}`` x, y centres, oldest first (``TrackTrails.points``),
            drawn as polylines in the track's colour.
    """
    import cv2

    if image_bgr.shape[:2] != tuple(detections.image_size):
        raise ValueError(f'image is {image_bgr.shape[:2]} but detections are for '
                         f'{detections.image_size}')
    if track_ids is not None and len(track_ids) != len(detections):
        raise ValueError(f'expected track_ids [{len(detections)}], got {len(track_ids)}')
    canvas = image_bgr.copy()
    masks = detections.mask_windows
    colors = [_detection_color(detections, index, track_ids) for index in range(len(detections))]
    for index in reversed(range(len(detections))):
        color = np.array(colors[index], np.float32)
        window, region = masks.windows[index], canvas[masks.slices(index)]  # a view
        region[window] = (region[window] * (1 - alpha) + color * alpha).astype(np.uint8)
    for track_id, points in (trails or {}).items():
        if len(points) > 1:
            cv2.polylines(canvas, [np.round(points).astype(np.int32).reshape(-1, 1, 2)], False,
                          track_color(track_id), 2, cv2.LINE_AA)
    for index in reversed(range(len(detections))):
        color = colors[index]
        x1, y1, x2, y2 = (int(v) for v in detections.boxes[index])
        if draw_boxes:
            cv2.rectangle(canvas, (x1, y1), (x2, y2), color, 1)
        if draw_labels:
            label = f'{detections.class_names[index]} {detections.scores[index]:.2f}'
            if track_ids is not None and track_ids[index] > 0:
                label = f'#{int(track_ids[index])} {label}'
            (text_w, text_h), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX,
                                                         0.4, 1)
            top = max(y1 - text_h - baseline, 0)
            cv2.rectangle(canvas, (x1, top), (x1 + text_w, top + text_h + baseline), color, -1)
            cv2.putText(canvas, label, (x1, top + text_h), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        (0, 0, 0), 1, cv2.LINE_AA)
    return canvas
