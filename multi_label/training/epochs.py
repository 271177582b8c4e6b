"""How many training steps make an epoch."""

from dataset.sampling import repeat_factors
from utils.config import ConfigError


def steps_per_epoch(labels, batch_size, replicas=1, repeat_factor_threshold=0.0, steps_per_execution=1):
    """Returns the number of whole global batches in a training epoch.

    With repeat-factor sampling the epoch length is the expected one (stochastic rounding varies
    it a little from epoch to epoch). With `steps_per_execution` > 1 it is a whole number of
    executions: Keras runs every execution in full, so an epoch of 5 steps at 2 a call would take a
    sixth batch from the next epoch's stream and shift every later epoch and the schedule by it.

    Args:
        labels: np.ndarray. [N, C] training labels.
        batch_size: int. Images per replica.
        replicas: int. Replicas in sync; the global batch is `batch_size * replicas`.
        repeat_factor_threshold: float. `dataset.sampling.repeat_factors`'s threshold; 0: off.
        steps_per_execution: int. Steps Keras runs in one call (the `steps_per_execution` setting).

    Raises:
        ConfigError: the training set is smaller than one global batch, or than one execution.
    """
    images = len(labels)
    if repeat_factor_threshold > 0:
        images = int(round(repeat_factors(labels, repeat_factor_threshold).sum()))
    steps = images // (batch_size * replicas)
    if steps == 0:
        raise ConfigError(f"train_labels has {len(labels)} images, fewer than one global batch of "
                          f"{batch_size * replicas} (batch_size={batch_size} x {replicas} replicas); lower batch_size")
    if steps % steps_per_execution:
        if steps < steps_per_execution:
            raise ConfigError(f"steps_per_execution={steps_per_execution} is more than the {steps} steps of an epoch "
                              f"({len(labels)} images in batches of {batch_size * replicas}); lower it")
        whole = steps - steps % steps_per_execution
        print(f"note: steps_per_execution={steps_per_execution} runs whole groups of steps: an epoch is {whole} "
              f"steps, not {steps}")
        steps = whole
    return steps
