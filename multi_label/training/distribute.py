"""tf.distribute for training: the strategy, which worker is the chief, and where each one writes.

`batch_size` is per replica: the input pipeline batches `batch_size x replicas` images (the global
batch), and the strategy splits every global batch across the replicas. With `multi_worker` each
worker process builds the same pipeline (same seed, same order) and keeps its own slice of each
global batch (auto-shard policy DATA), so the replicas together see what one device would see with
the global batch.
"""

import contextlib
import json
import os
import tempfile

import keras
import tensorflow as tf

from multi_label.keras_internals import build_for_multi_worker
from utils.config import ConfigError


def _auto():
    # MirroredStrategy over the local GPUs when there is more than one, else one device
    return _mirrored() if len(tf.config.list_logical_devices("GPU")) > 1 else _one_device()


def _one_device():
    return tf.distribute.get_strategy()


def _mirrored():
    # All local GPUs; without one, every logical CPU device (one, unless the CPU was split into
    # several with tf.config.set_logical_device_configuration, as the tests do).
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.MirroredStrategy([d.name for d in gpus or tf.config.list_logical_devices("CPU")])


def _multi_worker():
    if "TF_CONFIG" not in os.environ:
        raise ConfigError("strategy='multi_worker' needs the TF_CONFIG environment variable (the cluster and "
                          "this worker's task); see learning_notes/06-scaling.md")
    return tf.distribute.MultiWorkerMirroredStrategy()


def _tpu():
    # the TPU from TPUClusterResolver's defaults
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


# strategy name -> function returning the tf.distribute.Strategy (configs.py's `strategy` explains each)
STRATEGIES = {"auto": _auto, "none": _one_device, "mirrored": _mirrored, "multi_worker": _multi_worker, "tpu": _tpu}


def build_strategy(name):
    """Returns the `tf.distribute.Strategy` named `name`.

    Args:
        name: str. A key of STRATEGIES: auto (MirroredStrategy when there is more than one local
            GPU, else the default one-device strategy), none, mirrored (all local GPUs, or all
            logical CPU devices when there is no GPU), multi_worker (MultiWorkerMirroredStrategy;
            the cluster comes from the TF_CONFIG environment variable), or tpu (TPUStrategy; the
            TPU from TPUClusterResolver's defaults).
    """
    return STRATEGIES[name]()


@contextlib.contextmanager
def training_scope(strategy, precision):
    """Builds what is made inside with `strategy`'s variables and `precision`'s layer policy.

    The precision policy applies to the layers built inside only; the global policy is put back
    after, so that later models of this process (tests, tools) are unaffected. Keras wraps the
    optimizer in a LossScaleOptimizer by itself for mixed_float16.

    Args:
        strategy: tf.distribute.Strategy.
        precision: str. A Keras dtype policy name: float32, mixed_float16 or mixed_bfloat16.
    """
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        with strategy.scope():
            yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def build_for_strategy(model, strategy, batch_spec):
    """Builds beforehand what `fit` would build on its first batch: the optimizer, and under multi_worker the loss.

    Without a distribution strategy Keras creates the optimizer's slots inside the trace of the
    first step, each variable behind an initialisation guard: a new run's first step took 9.6 s
    with them, 5.0 s without, on 2 cores (benchmarks/bench_start.py, BENCHMARKS.md). Built here
    eagerly, with every trainable weight, as a resumed or freezing run always built it: the same
    variables. Call inside `training_scope`, after `model.compile`.

    Args:
        model: keras.Model. Compiled.
        strategy: tf.distribute.Strategy.
        batch_spec: tuple of tf.TensorSpec. The training dataset's `element_spec`.
    """
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        build_for_multi_worker(model, batch_spec)
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def is_chief(strategy):
    """True for the process that writes checkpoints, logs and reports (every single-worker run)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type in (None, "chief"):
        return True
    # Without a "chief" task in the cluster, worker 0 is the chief (Keras's and TF's convention).
    return task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()


def worker_folder():
    """A fresh temporary folder for a non-chief worker's checkpoints and logs (removed after training).

    Every worker runs the same callbacks, since saving and validating may take part in collective
    operations and the logs (val mAP for the plateau schedule) must agree; only the chief's files
    are kept. This is the pattern of Keras's own ModelCheckpoint under MultiWorkerMirroredStrategy.
    """
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    return tempfile.mkdtemp(prefix=f"workertemp_{task.get('type', 'worker')}{task.get('index', '')}_")


def distribute_options(dataset):
    """Sets auto-shard policy DATA: every worker reads the same pipeline and keeps its slice of each batch.

    FILE sharding (the AUTO default when it finds files) would split by TFRecord shard, which gives
    workers unequal numbers of batches and a different order from a one-device run.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
