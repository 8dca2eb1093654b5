"""Training losses: prior matching, upstream YOLACT's criterion and the contextual loss."""

from yolact_ros.losses.contextual import contextual_loss
from yolact_ros.losses.criterion import (build_criterion, LOSS_NAMES, LossConfig, LossWeights,
                                         weighted_total, YolactCriterion)
from yolact_ros.losses.matching import Match, match_priors

__all__ = ['LOSS_NAMES', 'LossConfig', 'LossWeights', 'Match', 'YolactCriterion',
           'build_criterion', 'contextual_loss', 'match_priors', 'weighted_total']
