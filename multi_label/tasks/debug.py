"""Debug mode: per-layer output and gradient statistics of one training batch, to find dead or exploding layers.

    python run.py mode=debug                                        # a freshly initialised model
    python run.py mode=debug checkpoint=models/demo/last.keras      # a trained one

One augmented training batch goes forward in training mode (BatchNorm uses batch statistics, as
in training) and the loss is differentiated with respect to every layer's output and weights.
The table is printed, saved as models/<run_name>/debug/layer_stats.csv, and the values go to
TensorBoard as histograms (logs/<run_name>/debug/). With a `groups` head the loss is the sum of
the groups' losses, as in training; the groups' logits are joined into the one output that the
layer statistics differentiate (one more row, `group_logits`), each group's loss on its own part.

The flags (dead, exploding, nan/inf, zero grad, zero gamma) are explained in
multi_label/evaluation/layer_statistics.py.
"""

import os

from dataset.pipeline import make_dataset
from dataset.run_splits import load_split
from multi_label.evaluation.group_metrics import joined_group_model, summed_group_loss
from multi_label.evaluation.layer_statistics import (
    first_nonfinite,
    format_table,
    layer_statistics,
    rows_csv,
    write_histograms,
)
from multi_label.losses import build_group_losses, build_loss
from multi_label.model import build_model
from multi_label.tasks.settings import loss_settings, model_settings, pipeline_settings, split_settings
from multi_label.trained_run import check_outputs, load_checkpoint
from utils.atomic import write_text
from utils.config import ConfigError
from utils.run_folder import run_folders


def run_debug(config):
    """Prints and saves the layer statistics of one training batch (CSV, TensorBoard histograms)."""
    # a checkpoint is loaded first: one of another kind of head stops here, before its label file is misread
    model = (load_checkpoint(config.checkpoint, groups=config.groups, head=config.head) if config.checkpoint
             else None)
    table = load_split(split_settings(config), "train_labels")
    if table is None:
        raise ConfigError("train_labels is empty; mode=debug needs a training batch")
    if len(table) < config.batch_size:
        raise ConfigError(f"train_labels={config.train_labels!r} has {len(table)} images, fewer than "
                          f"batch_size={config.batch_size}; lower batch_size")
    if model is not None:
        check_outputs(model, config.checkpoint, None if config.groups else len(table.class_names), config.groups)
        source = config.checkpoint
    else:
        model = build_model(model_settings(config), len(table.class_names), train_labels=table.labels,
                            class_names=table.class_names)
        source = f"a freshly initialised {model.name} (seed {config.seed})"
    if config.groups:  # one output and one loss, as the layer statistics take
        model = joined_group_model(model, config.groups)
        loss = summed_group_loss(build_group_losses(loss_settings(config), config.groups), config.groups)
    else:
        loss = build_loss(loss_settings(config), table.labels)
    # a small shuffle buffer: one batch does not need the whole file read first
    quick = pipeline_settings(config, cache_images=False, shuffle_buffer=config.batch_size)
    images, labels = next(iter(make_dataset(table.images, table.labels, quick, training=True)))
    rows, tensors, loss_value = layer_statistics(model, loss, images, labels)

    model_dir, log_dir = run_folders(config.run_name)
    csv_path = os.path.join(model_dir, "debug", "layer_stats.csv")
    write_text(csv_path, rows_csv(rows))
    write_histograms(os.path.join(log_dir, "debug"), tensors)
    summed = f" (the sum of the {len(config.groups)} groups' losses)" if config.groups else ""
    print(f"Layer statistics of one training batch of {int(images.shape[0])} images through {source}; "
          f"loss {loss_value:.6f}{summed}")
    print(format_table(rows))
    flagged = [row for row in rows if row["flags"]]
    origin = first_nonfinite(rows)
    if origin:
        print(f"warning: non-finite values start at layer {origin}")
    if any("zero gamma" in row["flags"] for row in rows):
        print("note: 'zero grad' inside a residual branch that ends in a 'zero gamma' BatchNorm is expected before "
              "the first update (zero-initialised residual branches)")
    print(f"{len(flagged)} of {len(rows)} layers flagged. Wrote {csv_path}; histograms: "
          f"tensorboard --logdir {os.path.join(log_dir, 'debug')}")
