"""Rare-class sampling inside tf.data: each image of the decoded stream repeated its drawn number of times.

`dataset.sampling` computes the factors and probabilities (NumPy); these functions realise them
per epoch in the stream, so the decoded-image cache is read in order and kept, and the shuffle
after mixes the copies.
"""

import numpy as np
import tensorflow as tf


def repeat_by_factor(ds, paths, factors, seed):
    """Repeats each image floor(r) or ceil(r) times per epoch (stochastic rounding), r its repeat factor.

    The factor is looked up by path, so images dropped as undecodable change nothing. Each copy
    follows its original in the stream; the shuffle after this mixes them. The rounding draw of
    the i-th image is a stateless draw from (`seed`, i): call it with each epoch's own seed. The
    same rule as `dataset.sampling.sample_epoch_indices`, done inside tf.data so the decoded-image
    cache is kept.

    Args:
        ds: tf.data.Dataset. Yields (image, labels, path).
        paths: list[str]. The image paths the labels belong to.
        factors: np.ndarray. float [N] repeat factors, from `dataset.sampling.repeat_factors`.
        seed: int64 [2] tensor (or an int). Seed of this epoch's rounding draws.
    """
    seed = tf.constant([seed, 0], tf.int64) if isinstance(seed, int) else seed
    return repeat_images(ds, paths, factor_copies(factors, seed))


def balanced_counts(probabilities, draws, seed):
    """int64 [N]: how often each label row is drawn in `draws` draws with replacement (a multinomial, from `seed`).

    Class-balanced sampling inside tf.data: each image of the stream is then repeated its count of
    times (`repeat_images`), so the decoded-image cache is read in order and kept, and the shuffle
    after mixes the copies; an undecodable image takes its draws with it (the epoch is topped up).
    The same rule as `dataset.sampling.sample_balanced_indices`.
    """
    logits = tf.constant(np.log(np.asarray(probabilities, np.float64))[None, :], tf.float32)
    drawn = tf.random.stateless_categorical(logits, draws, tf.cast(seed, tf.int64), dtype=tf.int64)[0]
    size = len(probabilities)
    return tf.math.bincount(drawn, minlength=size, maxlength=size, dtype=tf.int64)


def factor_copies(factors, seed):
    """copies(index in the stream, label row) of repeat-factor sampling: floor(r) + [u < r - floor(r)].

    A path missing from the label rows (row -1) keeps factor 1.
    """
    factors = tf.constant(np.asarray(factors, np.float64))
    seed = tf.cast(seed, tf.int64)

    def copies(index, row):
        factor = tf.where(row >= 0, tf.gather(factors, tf.maximum(row, 0)), tf.constant(1.0, tf.float64))
        uniform = tf.random.stateless_uniform([], tf.random.experimental.stateless_fold_in(seed, index),
                                              dtype=tf.float64)
        return tf.cast(tf.floor(factor) + tf.cast(uniform < factor - tf.floor(factor), tf.float64), tf.int64)

    return copies


def repeat_images(ds, paths, copies):
    """Repeats the i-th image of the stream `copies(i, its label row)` times (row: its path's index in `paths`, or -1).

    Args:
        ds: tf.data.Dataset. Yields (image, labels, path).
        paths: list[str]. The image paths the labels belong to.
        copies: callable. (int64 index, int64 row) -> int64 number of copies.
    """
    # a path listed twice (mode=check reports it) maps to its first row: a table key takes one value
    names, first = np.unique(np.asarray(paths, dtype=object).astype(str), return_index=True)
    rows = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(names, first.astype(np.int64)),
                                     default_value=-1)
    return ds.enumerate().flat_map(
        lambda index, item: tf.data.Dataset.from_tensors(item).repeat(copies(index, rows.lookup(item[2]))))
