"""How many training steps make an epoch."""

from dataset.sampling import repeat_factors
from utils.config import ConfigError


def steps_per_epoch(labels, batch_size, replicas=1, repeat_factor_threshold=0.0):
    """Returns the number of whole global batches in a training epoch.

    With repeat-factor sampling the epoch length is the expected one (stochastic rounding varies
    it a little from epoch to epoch).

    Args:
        labels: np.ndarray. [N, C] training labels.
        batch_size: int. Images per replica.
        replicas: int. Replicas in sync; the global batch is `batch_size * replicas`.
        repeat_factor_threshold: float. `dataset.sampling.repeat_factors`'s threshold; 0: off.

    Raises:
        ConfigError: the training set is smaller than one global batch.
    """
    images = len(labels)
    if repeat_factor_threshold > 0:
        images = int(round(repeat_factors(labels, repeat_factor_threshold).sum()))
    steps = images // (batch_size * replicas)
    if steps == 0:
        raise ConfigError(f"train_labels has {len(labels)} images, fewer than one global batch of "
                          f"{batch_size * replicas} (batch_size={batch_size} x {replicas} replicas); lower batch_size")
    return steps
