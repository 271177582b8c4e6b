"""The focal-margin terms that Hill and SPLC are built on (Zhang et al. 2021, robust-loss-mlml)."""

from keras import ops


def focal_positive(logits, gamma, margin=0.0):
    """-(1 - p_m)^gamma * log(p_m) per entry, p_m = sigmoid(logit - margin).

    In log-sigmoid form, so |logit| = 100 keeps finite values and gradients.
    """
    shifted = logits - margin
    return ops.exp(gamma * ops.log_sigmoid(-shifted)) * ops.softplus(-shifted)


def focal_negative(logits, gamma):
    """-p^gamma * log(1 - p) per entry, p = sigmoid(logit): the focal loss's negative term."""
    return ops.exp(gamma * ops.log_sigmoid(logits)) * ops.softplus(logits)
