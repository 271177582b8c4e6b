"""Fine-tuning controls: a frozen backbone for the first epochs, and a learning-rate multiplier for it.

Freezing (`freeze_epochs`). Setting `trainable = False` on the backbone's layers takes the weights
out of `model.trainable_weights` and puts its BatchNormalization layers in inference mode (Keras 3
runs a non-trainable BN with its moving statistics, and does not update them). Keras reads both
only when it traces the training step, which is why changing `trainable` normally calls for a new
`compile`; a new compile would also replace the optimizer, its state and the schedule. Instead,
`FreezeBackbone` flips `trainable` at the start of an epoch and rebuilds just the training
function (`keras_internals.retrace_train_step`): `fit` looks the function up anew at every step,
so the next step is traced with the new set of weights. The optimizer is built once, with the
weights of the whole model, before the first freeze: it then updates the head alone while the
backbone is frozen and everything afterwards, keeping one state and one learning-rate schedule.
The frozen/unfrozen state follows from the epoch number alone, so a resumed run gets it right.
The balanced stage (`balanced_epochs`) freezes the backbone the same way, from epoch `epochs` on.

Learning-rate multiplier (`backbone_lr_multiplier`). Keras 3 has no per-variable learning rate
and no MultiOptimizer. Scaling the backbone's gradients instead would be exact for SGD only: Adam,
RAdam and Lion divide the scale away. `scale_backbone_learning_rate` wraps the optimizer's
`update_step(gradient, variable, learning_rate)`, the per-variable update that every Keras
optimizer implements (`keras_internals.scale_learning_rate`), so that backbone variables receive
`learning_rate * multiplier`. Every update rule here (SGD with momentum, Adam, AdamW, RAdam, Lion)
is linear in the learning rate, so this is the same as the backbone's own optimizer with a scaled
learning rate. Decoupled weight decay (`weight_decay`), applied by Keras outside `update_step`,
keeps the base learning rate; the L2 penalties (`l2_kernels`, ...) go through the
gradients and are scaled.
"""

import keras

from multi_label.keras_internals import retrace_train_step, scale_learning_rate
from multi_label.model import backbone_layers


class FreezeBackbone(keras.callbacks.Callback):
    """Keeps the backbone frozen (BatchNorm in inference mode) during epochs [0, freeze_epochs) and from `frozen_from`.

    Args:
        layers: list[keras.layers.Layer]. The backbone's layers.
        freeze_epochs: int. Number of first epochs that train the head alone.
        frozen_from: int or None. The first epoch of the balanced stage, frozen to the end; None: none.
    """

    def __init__(self, layers, freeze_epochs, frozen_from=None):
        super().__init__()
        self.layers = list(layers)
        self.freeze_epochs = int(freeze_epochs)
        self.frozen_from = frozen_from
        self.frozen = False

    def frozen_in(self, epoch):
        """Whether the backbone is frozen during `epoch` (0-based)."""
        return epoch < self.freeze_epochs or (self.frozen_from is not None and epoch >= self.frozen_from)

    def on_train_begin(self, logs=None):
        # Built with every weight, so that unfreezing later finds optimizer slots for the backbone.
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)

    def on_epoch_begin(self, epoch, logs=None):
        frozen = self.frozen_in(epoch)
        if frozen == self.frozen:
            return
        for layer in self.layers:
            layer.trainable = not frozen
        self.frozen = frozen
        retrace_train_step(self.model)  # with the new trainable weights and BN mode
        why = (f" for the first {self.freeze_epochs} epochs" if epoch < self.freeze_epochs
               else " for the balanced stage")
        print(f"\nEpoch {epoch + 1}: backbone {'frozen' if frozen else 'unfrozen'}" + (why if frozen else ""))

    def on_train_end(self, logs=None):
        # Saved models and a later fit see the whole model trainable again.
        if self.frozen:
            for layer in self.layers:
                layer.trainable = True
            self.frozen = False
            retrace_train_step(self.model)


def scale_backbone_learning_rate(optimizer, variables, multiplier):
    """Makes `optimizer` update `variables` with its learning rate times `multiplier`.

    Args:
        optimizer: keras.optimizers.Optimizer. A LossScaleOptimizer's inner optimizer is the one changed.
        variables: list[keras.Variable]. The backbone's trainable variables.
        multiplier: float. Factor on the learning rate of those variables (0 stops them).
    """
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    scale_learning_rate(optimizer, variables, multiplier)
    return optimizer


def fine_tuning_callbacks(model, optimizer, backbone=None, freeze_epochs=0, backbone_lr_multiplier=1.0,
                          frozen_from=None):
    """Applies `backbone_lr_multiplier` to `optimizer`; returns the callbacks for `freeze_epochs` and the stage.

    Args:
        model: keras.Model. From `build_model`, every layer still trainable.
        optimizer: keras.optimizers.Optimizer. The optimizer `model` is compiled with.
        backbone: str or None. The backbone's registry name; None: read from the model's name.
        freeze_epochs: int. Number of first epochs that train the head alone; 0: none.
        backbone_lr_multiplier: float. Factor on the backbone's learning rate.
        frozen_from: int or None. The balanced stage's first epoch (`epochs`), frozen from then on; None: no stage.

    Returns:
        list[keras.callbacks.Callback]. Empty when `freeze_epochs` is 0 and there is no stage.
    """
    layers = backbone_layers(model, backbone)
    if backbone_lr_multiplier != 1.0:
        variables = [v for layer in layers for v in layer.trainable_variables]
        scale_backbone_learning_rate(optimizer, variables, backbone_lr_multiplier)
        print(f"Backbone learning rate: lr x {backbone_lr_multiplier:g} ({len(variables)} variables)")
    return [FreezeBackbone(layers, freeze_epochs, frozen_from)] if freeze_epochs > 0 or frozen_from is not None else []
