"""The training epoch as state of the losses whose terms change with it (SPLC's switch, LL-R's rate)."""

import keras
import tensorflow as tf


class EpochDependent:
    """Mixin: the current epoch (0-based, as `model.fit` counts) in a non-trainable `keras.Variable`.

    A compiled train step reads the variable, so the value set between epochs reaches it without
    a retrace (a Python attribute would be frozen into the first trace). The training callbacks
    set it at each epoch's start from the index `model.fit` passes, which a resumed fit starts at
    its first unfinished epoch, so a resumed run sees the epochs an uninterrupted one did; the
    backup keeps it too (`loss.variables`). It is training progress, not a constructor argument:
    `get_config` leaves it out and a loaded loss starts at epoch 0. Create the loss inside
    `strategy.scope()` so the variable is mirrored.
    """

    def build_epoch(self, name):
        """Creates the epoch variable (call once, in `__init__`)."""
        self.epoch_variable = keras.Variable(0.0, trainable=False, dtype="float32", aggregation="mean",
                                             name=f"{name}_epoch")

    @property
    def epoch(self):
        """int. The epoch the loss computes for."""
        # .numpy() rather than np.array(): TF tensors' __array__ warns under NumPy 2.
        return int(round(float(tf.convert_to_tensor(self.epoch_variable).numpy())))

    def set_epoch(self, epoch):
        """Sets the epoch (0-based) that the next steps compute for."""
        if int(epoch) != epoch or epoch < 0:
            raise ValueError(f"epoch must be an integer >= 0. Received: epoch={epoch!r}")
        self.epoch_variable.assign(float(epoch))

    @property
    def variables(self):
        """list of keras.Variable. The state to checkpoint alongside weights."""
        return [self.epoch_variable]


def epoch_dependent_losses(loss):
    """The losses among `loss` (one, or a dict of a groups head's) whose terms depend on the epoch.

    Args:
        loss: keras.losses.Loss or dict[str, keras.losses.Loss]. What `model.compile` received.
    """
    losses = loss.values() if isinstance(loss, dict) else [loss]
    return [item for item in losses if isinstance(item, EpochDependent)]
