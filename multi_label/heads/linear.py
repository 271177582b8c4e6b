"""The plain multi-label head: global pooling, dropout, one logit per class."""

from keras import layers

POOLINGS = ["avg", "max", "avg+max", "flatten"]


def pool_features(features, pooling="avg", dropout=0.0, name="head"):
    """Returns the pooled feature vector [batch, channels] (twice the channels for "avg+max", h*w times for "flatten").

    Args:
        features: KerasTensor. Backbone feature map [batch, h, w, channels]; any h and w.
        pooling: str. "avg", "max", "avg+max" (both, concatenated) or "flatten" (the whole map, in
            place; needs a fixed h and w).
        dropout: float. Dropout rate after pooling.
        name: str. Layer name prefix.
    """
    if pooling == "avg":
        x = layers.GlobalAveragePooling2D(name=f"{name}_avgpool")(features)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name=f"{name}_maxpool")(features)
    elif pooling == "avg+max":
        x = layers.Concatenate(name=f"{name}_pool")([
            layers.GlobalAveragePooling2D(name=f"{name}_avgpool")(features),
            layers.GlobalMaxPooling2D(name=f"{name}_maxpool")(features)])
    elif pooling == "flatten":
        # Keeps where each feature is: outputs tied to a place in the image (the character at each
        # position of a licence plate, the digit at each position) need it; global pooling drops it.
        if None in tuple(features.shape[1:3]):
            raise ValueError("pooling='flatten' needs a fixed image_size (the feature map's size is part of the head)")
        x = layers.Flatten(name=f"{name}_flatten")(features)
    else:
        raise ValueError(f"pooling must be one of {POOLINGS}. Received: pooling={pooling!r}")
    if dropout > 0:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


def linear_head(features, num_classes, pooling="avg", dropout=0.0, name="head"):
    """Returns logits [batch, num_classes] (float32 even under mixed precision).

    Args:
        features: KerasTensor. Backbone feature map [batch, h, w, channels]; any h and w.
        num_classes: int. Number of labels.
        pooling: str. "avg", "max" or "avg+max" (both, concatenated).
        dropout: float. Dropout rate before the classifier.
        name: str. Layer name prefix.
    """
    x = pool_features(features, pooling, dropout, name)
    # float32 logits: sigmoid and log-loss of float16 logits lose the small probabilities that mAP ranks.
    return layers.Dense(num_classes, dtype="float32", name="logits")(x)
