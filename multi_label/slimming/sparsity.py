"""Sparsity training: an L1 penalty on the gammas of the prunable BatchNorms, `loss += s * sum(|gamma|)`.

The paper's penalty (Liu et al. 2017, eq. 1), on the BatchNorms whose channels may be pruned and
on no other. TensorFlow's gradient of |x| is sign(x) (0 at 0), so the penalty's gradient is
s * sign(gamma), the subgradient the paper uses. It goes through the optimizer as the L2
penalties of `multi_label.optim.weight_decay` do (an Adam-like optimizer rescales it per weight),
and it is set the same way: on the variable's `regularizer` (which `Layer.losses` reads) and the
layer's `gamma_regularizer` (which `get_config` saves). An L2 already set on those gammas
(`l2_bn_gamma`) is kept beside it, one `L1L2` regularizer doing both; and
`apply_weight_decay` keeps this L1 when it sets the L2 afterwards.
"""

import keras

from multi_label.slimming.families import family_of


def composed_regularizer(l1, l2):
    """The regularizer of s1 * sum|x| + s2 * sum(x^2): L1, L2, L1L2 or None."""
    if l1 > 0 and l2 > 0:
        return keras.regularizers.L1L2(l1=l1, l2=l2)
    if l1 > 0:
        return keras.regularizers.L1(l1)
    return keras.regularizers.L2(l2) if l2 > 0 else None


def strengths(regularizer):
    """(l1, l2) of a regularizer set on a weight: an L1, L2 or L1L2 one, or None."""
    return float(getattr(regularizer, "l1", 0.0) or 0.0), float(getattr(regularizer, "l2", 0.0) or 0.0)


def apply_slimming_l1(model, strength, backbone, verbose=True):
    """Sets the L1 `strength` on the gammas of the prunable BatchNorms of a built model; returns their count.

    Args:
        model: keras.Model. A built model whose backbone `backbone` is a prunable one.
        strength: float. s of s * sum(|gamma|); 0 removes the L1 (any L2 stays).
        backbone: str. The backbone's registry name.
        verbose: bool. Print the count.
    """
    if strength < 0:
        raise ValueError(f"slimming_l1 must be >= 0. Received: slimming_l1={strength!r}")
    count = 0
    for prunable in family_of(backbone).prunable(model):
        layer = model.get_layer(prunable.bn)
        _, l2 = strengths(layer.gamma.regularizer)
        layer.gamma.regularizer = layer.gamma_regularizer = composed_regularizer(strength, l2)
        count += 1
    if verbose:
        print(f"Network slimming: L1 {strength:g} on the gammas of {count} prunable BatchNorms")
    return count
