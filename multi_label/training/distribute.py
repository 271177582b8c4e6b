"""tf.distribute for training: the strategy, which worker is the chief, and where each one writes.

`batch_size` is per replica: the input pipeline batches `batch_size x replicas` images (the global
batch), and the strategy splits every global batch across the replicas. With `multi_worker` each
worker process builds the same pipeline (same seed, same order) and keeps its own slice of each
global batch (auto-shard policy DATA), so the replicas together see what one device would see with
the global batch.
"""

import json
import os
import tempfile

import tensorflow as tf

from utils.config import ConfigError


def build_strategy(config):
    """Returns the `tf.distribute.Strategy` that `config.strategy` names.

    Args:
        config: Config. Reads strategy: auto (MirroredStrategy when there is more than one local
            GPU, else the default one-device strategy), none, mirrored (all local GPUs, or all
            logical CPU devices when there is no GPU), multi_worker
            (MultiWorkerMirroredStrategy; the cluster comes from the TF_CONFIG environment
            variable), or tpu (TPUStrategy; the TPU from TPUClusterResolver's defaults).
    """
    name = config.strategy
    if name == "auto":
        name = "mirrored" if len(tf.config.list_logical_devices("GPU")) > 1 else "none"
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        # All local GPUs; without one, every logical CPU device (one, unless the CPU was split into
        # several with tf.config.set_logical_device_configuration, as the tests do).
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy([d.name for d in gpus or tf.config.list_logical_devices("CPU")])
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ConfigError("strategy='multi_worker' needs the TF_CONFIG environment variable (the cluster and "
                              "this worker's task); see learning_notes/06-scaling.md")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ConfigError(f"strategy must be one of ['auto', 'none', 'mirrored', 'multi_worker', 'tpu']. "
                      f"Received: strategy={config.strategy!r}")


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
