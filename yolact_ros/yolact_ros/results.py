"""COCO results format: what ``yolact predict`` writes and ``yolact eval`` reads."""

from typing import Dict, List, Optional

import numpy as np

from yolact_ros.structures import Detections


def encode_mask_rle(mask: np.ndarray) -> Dict:
    """Encode a ``bool[H, W]`` mask as COCO compressed RLE with a ``str`` counts field."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {'size': [int(v) for v in rle['size']], 'counts': rle['counts'].decode('ascii')}


def detections_to_coco(detections: Detections, *, image_id: int,
                       file_name: Optional[str] = None) -> List[Dict]:
    """Turn one image's detections into COCO result objects (one per detection).

    ``bbox`` is ``[x, y, w, h]`` in pixels, ``category_id`` the dataset category id,
    ``segmentation`` compressed RLE. YOLACT++ models add ``mask_score``.
    """
    results = []
    for index in range(len(detections)):
        x1, y1, x2, y2 = (float(v) for v in detections.boxes[index])
        result = {
            'image_id': int(image_id),
            'category_id': int(detections.category_ids[index]),
            'category_name': detections.class_names[index],
            'bbox': [x1, y1, x2 - x1, y2 - y1],
            'score': float(detections.scores[index]),
            'segmentation': encode_mask_rle(detections.mask_windows.full(index)),
        }
        if file_name is not None:
            result = {'file_name': file_name, **result}
        if detections.mask_scores is not None:
            result['mask_score'] = float(detections.mask_scores[index])
        results.append(result)
    return results
