"""The plain multi-label head: global pooling, dropout, one logit per class."""

from keras import layers


def _avg(features, name):
    return layers.GlobalAveragePooling2D(name=f"{name}_avgpool")(features)


def _max(features, name):
    return layers.GlobalMaxPooling2D(name=f"{name}_maxpool")(features)


def _avg_max(features, name):
    return layers.Concatenate(name=f"{name}_pool")([_avg(features, name), _max(features, name)])


def _flatten(features, name):
    # Keeps where each feature is: outputs tied to a place in the image (the character at each
    # position of a licence plate, the digit at each position) need it; global pooling drops it.
    if None in tuple(features.shape[1:3]):
        raise ValueError("pooling='flatten' needs a fixed image_size (the feature map's size is part of the head)")
    return layers.Flatten(name=f"{name}_flatten")(features)


# Pooling name -> function(feature map, layer name prefix) -> feature vector.
POOLINGS = {
    "avg": _avg,
    "max": _max,
    "avg+max": _avg_max,
    "flatten": _flatten,
    # A ViT's class token, which multi_label/model.py passes as a 1x1 map: pooling it keeps it.
    "class_token": _avg,
}


def pool_features(features, pooling="avg", dropout=0.0, name="head"):
    """Returns the pooled feature vector [batch, channels] (twice the channels for "avg+max", h*w times for "flatten").

    Args:
        features: KerasTensor. Backbone feature map [batch, h, w, channels]; any h and w.
        pooling: str. "avg", "max", "avg+max" (both, concatenated) or "flatten" (the whole map, in
            place; needs a fixed h and w).
        dropout: float. Dropout rate after pooling.
        name: str. Layer name prefix.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {list(POOLINGS)}. Received: pooling={pooling!r}")
    x = POOLINGS[pooling](features, name)
    if dropout > 0:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


def linear_head(features, num_classes, pooling="avg", dropout=0.0, name="head"):
    """Returns logits [batch, num_classes] (float32 even under mixed precision).

    Args:
        features: KerasTensor. Backbone feature map [batch, h, w, channels]; any h and w.
        num_classes: int. Number of labels.
        pooling: str. "avg", "max", "avg+max" (both, concatenated) or "flatten".
        dropout: float. Dropout rate before the classifier.
        name: str. Layer name prefix.
    """
    x = pool_features(features, pooling, dropout, name)
    # float32 logits: sigmoid and log-loss of float16 logits lose the small probabilities that mAP ranks.
    return layers.Dense(num_classes, dtype="float32", name="logits")(x)
