"""The multi-output head: one softmax classifier per attribute group (one-of-K each)."""

from keras import layers

from multi_label.heads.linear import pool_features


def group_head(features, groups, pooling="avg", dropout=0.0, name="head"):
    """Returns {group name: logits [batch, K]} (float32), one output per attribute group.

    All groups share the pooled image feature; each has its own dense classifier, trained with
    its own softmax loss (`multi_label.losses.build_group_losses`), in which -1 labels are ignored.

    Args:
        features: KerasTensor. Backbone feature map [batch, h, w, channels].
        groups: dict[str, int]. Group name -> number of classes K (>= 2), in label-file order.
        pooling: str. "avg", "max" or "avg+max".
        dropout: float. Dropout rate before the classifiers.
        name: str. Layer name prefix of the pooling.
    """
    if not groups:
        raise ValueError(f"head='groups' needs groups={{name: number of classes}}. Received: groups={groups!r}")
    x = pool_features(features, pooling, dropout, name)
    return {group: layers.Dense(size, dtype="float32", name=f"logits_{group}")(x) for group, size in groups.items()}
