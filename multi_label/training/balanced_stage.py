"""The balanced stage: classifier re-training on class-balanced batches after the main training.

Kang et al., "Decoupling Representation and Classifier for Long-Tailed Recognition", ICLR 2020,
classifier re-training (cRT): the representation learnt with the usual (instance-balanced)
sampling is kept, and the classifier is re-initialised and trained again, briefly, on
class-balanced batches. Here the stage is the last `balanced_epochs` epochs of the one `model.fit`
of the run, epochs `start`, `start + 1`, ... (`start` = the `epochs` setting), and its parts are
where each belongs: the training batches of those epochs are drawn class-balanced
(`dataset.pipeline.training_epochs`), `FreezeBackbone` freezes the backbone from `start` on
(`multi_label.optim.finetune`), the learning rate restarts (`multi_label.optim.stage_schedule`),
and `BalancedStageStart` below re-initialises the head once. The checkpoint by validation mAP runs
on through the stage, so the best model of the whole run is kept, whichever stage it comes from.

Re-initialised means set back to the values the head had when the model was built (drawn from
`seed`; a head copied from a `backbone_weights` file starts from that file's), so that a run
resumed at the stage's start resets to the very values the uninterrupted run did. Whether the reset
is due follows from the backup: a run resumed after the stage has begun (an epoch of it finished, or
a mid-epoch backup inside its first epoch) keeps the head the backup holds. The optimizer goes on
with its state (Adam's moments, the step count the schedule reads); Kang et al. re-train with a
fresh SGD, whose momentum starts at zero.
"""

import keras

from multi_label.model import backbone_layers
from multi_label.training.backup import latest_backup


def head_layers(model, backbone=None):
    """The layers of `model` with weights outside its backbone: the head (and the input normalisation's constants)."""
    inside = {id(layer) for layer in backbone_layers(model, backbone)}
    return [layer for layer in model.layers if id(layer) not in inside and layer.weights]


def stage_started(backup_dir, start):
    """Whether the backup in `backup_dir` is from within the stage that begins at epoch `start` (0-based)."""
    meta = latest_backup(backup_dir)
    if meta is None:
        return False
    return meta["epoch"] > start or (meta["epoch"] == start and meta.get("steps_in_epoch", 0) > 0)


class BalancedStageStart(keras.callbacks.Callback):
    """At the balanced stage's first epoch: re-initialises the head (once per run) and says the stage begins.

    Args:
        layers: list[keras.layers.Layer]. The head's layers (`head_layers`), whose weights are taken now, as
            the values to reset to.
        start: int. The stage's first epoch, 0-based (the `epochs` setting).
        epochs: int. Epochs of the stage.
        backup_dir: str. The run's backup folder, which tells whether the stage had begun before a restart.
        reset_head: bool. Re-initialise the head (Kang et al.'s cRT); False goes on with the trained head.
        learning_rate: float. The stage's peak learning rate, for the line printed.
    """

    def __init__(self, layers, start, epochs, backup_dir, reset_head=True, learning_rate=None):
        super().__init__()
        self.layers = list(layers)
        self.initial = [layer.get_weights() for layer in self.layers] if reset_head else None
        self.start = int(start)
        self.epochs = int(epochs)
        self.backup_dir = backup_dir
        self.reset_head = reset_head
        self.learning_rate = learning_rate
        self.started = False
        self.announced = False  # a line said in this process
        self.resets = 0  # head resets in this process (0 or 1)

    def on_train_begin(self, logs=None):
        self.started = stage_started(self.backup_dir, self.start)

    def on_epoch_begin(self, epoch, logs=None):
        if epoch < self.start or (self.started and self.announced):
            return
        if self.started:  # the first epoch of a process resumed inside the stage
            print(f"\nEpoch {epoch + 1}: the balanced stage goes on (epoch {epoch - self.start + 1} of "
                  f"{self.epochs}); the head is the backup's")
            self.announced = True
            return
        self.started = self.announced = True
        if self.initial is not None:
            for layer, weights in zip(self.layers, self.initial):
                layer.set_weights(weights)
            self.resets += 1
        rate = "" if self.learning_rate is None else f", a cosine learning rate from {self.learning_rate:g}"
        print(f"\nEpoch {epoch + 1}: balanced stage (classifier re-training, Kang et al. 2020) for {self.epochs} "
              f"epochs: backbone frozen, head {'re-initialised' if self.initial is not None else 'kept'}, "
              f"class-balanced sampling{rate}")
