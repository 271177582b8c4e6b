"""Head registry: config name -> function(features, num_classes, config) -> logits."""

from multi_label.heads.linear import linear_head

HEADS = {
    "linear": lambda features, num_classes, config: linear_head(
        features, num_classes, pooling=config.pooling, dropout=config.dropout),
}
