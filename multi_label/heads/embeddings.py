"""Label embeddings for the graph heads: word vectors of the class names from a GloVe text file."""

import re

import keras
import numpy as np

from utils.config import ConfigError

LEARNED_DIM = 300  # size of learned label embeddings: that of the GloVe vectors the papers use


def class_words(name):
    """The lower-case words of a class name: "traffic_light" and "Traffic-Light" give both words."""
    return [word.lower() for word in re.split(r"[\s_\-]+", name.strip()) if word]


def load_label_embeddings(path, class_names):
    """Reads one vector per class from a GloVe-format text file (`word v1 v2 ... vd` per line).

    A multi-word class name gets the mean of its words' vectors; words match case-insensitively
    and the first line of a word wins (GloVe files list frequent forms first). The file is read
    as a stream, keeping only the words asked for, so the multi-gigabyte files work.

    Args:
        path: str. The embeddings file (GloVe's own, or word2vec text with its count line).
        class_names: list[str]. Class names, in model order.

    Returns:
        np.ndarray. float32 [num_classes, d].

    Raises:
        ConfigError: naming the class and word that the file does not have.
    """
    if class_names is None:
        raise ConfigError(f"label_embeddings={path!r} needs the class names to look up; none were given")
    words = {name: class_words(name) for name in class_names}
    for name, parts in words.items():
        if not parts:
            raise ConfigError(f"label_embeddings={path!r}: class name {name!r} has no word to look up")
    wanted = {word for parts in words.values() for word in parts}
    vectors = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                word, _, rest = line.rstrip("\n").partition(" ")
                word = word.lower()
                if word in wanted and word not in vectors:
                    vectors[word] = np.array(rest.split(), np.float64)
                    if len(vectors) == len(wanted):
                        break
    except OSError as error:
        raise ConfigError(f"label_embeddings={path!r} cannot be read: {error.strerror}") from None
    sizes = {len(v) for v in vectors.values()}
    if len(sizes) > 1 or 0 in sizes:
        raise ConfigError(f"label_embeddings={path!r}: vectors of different lengths {sorted(sizes)}; "
                          "expected a GloVe text file (word and d numbers per line)")
    for name, parts in words.items():
        missing = [word for word in parts if word not in vectors]
        if missing:
            raise ConfigError(f"label_embeddings={path!r} has no vector for {missing[0]!r} (class {name!r}); "
                              "rename the class or add the word to the file")
    return np.stack([np.mean([vectors[w] for w in words[name]], axis=0) for name in class_names]).astype(np.float32)


def add_label_vectors(layer, num_classes, embeddings):
    """Creates a layer's label-embedding weight [num_classes, d].

    Vectors read from a file are fixed (a non-trainable weight, so the `.keras` file carries
    them); without a file the embeddings are learned, drawn from N(0, 1/d): vectors of about unit
    length (unit-normal entries, as `nn.Embedding` draws them, would be sqrt(d) = 17 long and start
    the graph heads with logits in the tens).

    Args:
        layer: keras.layers.Layer. The head layer, inside its `build`.
        num_classes: int. Number of labels.
        embeddings: list or None. [num_classes, d] vectors from `load_label_embeddings`.
    """
    if embeddings is None:
        return layer.add_weight(shape=(num_classes, LEARNED_DIM), name="label_embeddings",
                                initializer=keras.initializers.RandomNormal(stddev=LEARNED_DIM ** -0.5))
    values = np.asarray(embeddings, np.float32)
    if values.shape[0] != num_classes:
        raise ValueError(f"embeddings has {values.shape[0]} rows for {num_classes} classes")
    weight = layer.add_weight(shape=values.shape, initializer="zeros", trainable=False, name="label_embeddings")
    weight.assign(values)
    return weight
