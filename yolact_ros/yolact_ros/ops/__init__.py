"""Stateless, export-friendly tensor functions (boxes, anchors, Fast NMS, masks)."""

from yolact_ros.ops.anchors import make_priors
from yolact_ros.ops.boxes import (center_size_to_corners, decode_boxes, encode_boxes,
                                  pairwise_iou, sanitize_coordinates)
from yolact_ros.ops.masks import assemble_masks, crop_to_boxes
from yolact_ros.ops.nms import fast_nms

__all__ = ['assemble_masks', 'center_size_to_corners', 'crop_to_boxes', 'decode_boxes',
           'encode_boxes', 'fast_nms', 'make_priors', 'pairwise_iou', 'sanitize_coordinates']
