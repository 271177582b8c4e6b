"""Early stopping on the validation mAP that survives a kill: the count is read, not kept.

`BestAndLastCheckpoint` writes the epoch of the best model to best.json as it saves it; epochs are
counted from the run's start. So the epochs without a better validation mAP are the finished
epochs minus that one, whether or not the run was interrupted in between: a resumed run honours the
count with no state of its own, and a run that has already stopped stays stopped.
"""

import json
import os

import keras


def epochs_since_best(model_dir, finished):
    """Finished epochs since the best model's (best.json), or None when no best is recorded yet."""
    path = os.path.join(model_dir, "best.json")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return finished - int(json.load(f)["epoch"])


def stopped_early(model_dir, finished, patience):
    """Whether a run with `finished` epochs has already met its early-stopping condition."""
    since = epochs_since_best(model_dir, finished)
    return patience > 0 and since is not None and since >= patience


class EarlyStoppingOnBest(keras.callbacks.Callback):
    """Ends training after `patience` epochs without a better validation mAP; the best model stays.

    Runs after `BestAndLastCheckpoint` (which has written this epoch's best.json) and the backup.

    Args:
        model_dir: str. The run folder holding best.json.
        patience: int. Epochs without improvement that end the run (>= 1).
    """

    def __init__(self, model_dir, patience):
        super().__init__()
        self.model_dir = model_dir
        self.patience = patience
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        if stopped_early(self.model_dir, epoch + 1, self.patience):
            self.model.stop_training = True
            self.stopped_epoch = epoch + 1
            print(f"Epoch {epoch + 1}: early stopping, {self.patience} epochs without a better validation mAP "
                  f"(early_stopping_patience={self.patience}); the best model is kept")
