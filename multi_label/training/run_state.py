"""The training state outside the model weights that a resumed run needs, as JSON for the backup.

The losses' variables (GHM's moving bin counts) are not model weights, so the weights file does
not hold them. With EMA, the backup is written after SwapEMAWeights put the averaged weights into
the model; the swap callback of a restarted run must know that, or it would train on from the
averaged weights.
"""

from multi_label.keras_internals import ema_weights_in_model, set_ema_weights_in_model


def loss_variables(loss):
    """The variables of a loss, or of every loss of a dict (a `groups` head: one per group), in a fixed order.

    Args:
        loss: keras.losses.Loss or dict[str, keras.losses.Loss]. What `model.compile` received.

    Returns:
        list[keras.Variable]. Empty for losses without state.
    """
    losses = loss.values() if isinstance(loss, dict) else [loss]
    return [variable for item in losses for variable in getattr(item, "variables", [])]


def run_state(loss, ema=None):
    """Returns the state outside the model weights, as a JSON-serialisable dict.

    Args:
        loss: keras.losses.Loss or dict[str, keras.losses.Loss]. The compiled loss or losses.
        ema: keras.callbacks.SwapEMAWeights or None. The swap callback of a run with EMA.
    """
    return {"loss": [variable.numpy().tolist() for variable in loss_variables(loss)],
            "ema_in_model": bool(ema is not None and ema_weights_in_model(ema))}


def restore_run_state(loss, ema, state):
    """Puts the state that `run_state` returned back into the losses and the swap callback.

    Args:
        loss: keras.losses.Loss or dict[str, keras.losses.Loss]. Built like the saved run's.
        ema: keras.callbacks.SwapEMAWeights or None.
        state: dict. From `run_state`, read back from the backup.
    """
    for variable, value in zip(loss_variables(loss), state["loss"]):
        variable.assign(value)
    if ema is not None:
        set_ema_weights_in_model(ema, state["ema_in_model"])
