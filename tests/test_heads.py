"""Heads: every head builds at two sizes and round-trips; CSRA, ML-GCN and SSGRL against NumPy
transcriptions of their papers' formulas; label embeddings from a GloVe file."""

import keras
import numpy as np
import pytest

from dataset.cooccurrence import conditional_probability
from multi_label.heads import HEADS, HeadSettings
from multi_label.heads.csra import ClassSpecificResidualAttention
from multi_label.heads.embeddings import load_label_embeddings
from multi_label.heads.ml_gcn import GraphConvolutionalClassifiers, mlgcn_adjacency
from multi_label.heads.ssgrl import SemanticGraphHead
from multi_label.model import ModelSettings, build_model
from utils.config import ConfigError, load_config

GROUPS = {"colour": 4, "shape": 3}
LABELS = np.array([[1, 1, 0, 0, -1], [1, 0, 1, 0, 0], [0, 1, 1, 1, 0], [1, 1, 1, 0, 1], [0, 0, 0, 1, -1],
                   [1, 1, 0, -1, 0]])


def config(**changes):
    # small graph widths keep the graph heads fast; everything else is the default
    return ModelSettings(**{"backbone_width": 0.125, "graph_hidden": 16, "csra_heads": 2, **changes})


def head_model(head, backbone="resnet18", width=0.125):
    if head == "groups":
        return build_model(config(head=head, groups=GROUPS, backbone=backbone, backbone_width=width), len(GROUPS))
    return build_model(config(head=head, backbone=backbone, backbone_width=width), 5, train_labels=LABELS)


def images(size, n=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def check_outputs(outputs, n):
    if isinstance(outputs, dict):  # groups: one softmax output per group
        assert {k: tuple(v.shape) for k, v in outputs.items()} == {g: (n, k) for g, k in GROUPS.items()}
        assert all(v.dtype == "float32" for v in outputs.values())
    else:
        assert outputs.shape == (n, 5) and outputs.dtype == "float32"
        assert np.isfinite(outputs).all()


@pytest.mark.parametrize("head", sorted(HEADS))
def test_every_head_builds_at_two_sizes_and_round_trips(head, tmp_path):
    model = head_model(head)
    for size in (64, 96):
        check_outputs(model(images(size), training=False), 2)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)  # no side file: the graph is inside
    x = images(72, n=3, seed=1)
    expected, got = model(x, training=False), loaded(x, training=False)
    for key in (GROUPS if head == "groups" else [None]):
        np.testing.assert_array_equal(expected[key] if key else expected, got[key] if key else got)


@pytest.mark.parametrize("backbone, width", [("preact_resnet18", 0.125), ("mobilenetv3_small", 0.75)])
@pytest.mark.parametrize("head", sorted(HEADS))
def test_every_head_on_other_feature_maps(head, backbone, width):
    check_outputs(head_model(head, backbone, width)(images(64), training=False), 2)


def test_csra_matches_the_formula():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(3, 4, 5, 8)).astype("float32")
    temperatures, lam = [1.0, 3.0, 99.0], 0.3
    layer = ClassSpecificResidualAttention(6, temperatures, lam)
    logits = np.asarray(layer(features))
    kernel = layer.get_weights()[0].astype(np.float64)
    x = features.reshape(3, 20, 8).astype(np.float64)
    expected = np.zeros((3, 6))
    for head, t in enumerate(temperatures):
        m = kernel[head] / np.linalg.norm(kernel[head], axis=0)  # [channels, classes], unit columns
        s = x @ m  # [batch, locations, classes]
        if t == 99:
            attention = s.max(axis=1)
        else:
            weights = np.exp(t * s) / np.exp(t * s).sum(axis=1, keepdims=True)
            attention = (weights * s).sum(axis=1)
        expected += s.mean(axis=1) + lam * attention
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)


def paper_adjacency(conditional, tau, p):
    """ML-GCN section 3.4, written out entry by entry."""
    c = len(conditional)
    a = np.zeros((c, c))
    for i in range(c):
        neighbours = [j for j in range(c) if j != i and conditional[i][j] >= tau]
        a[i, i] = 1 - p if neighbours else 1.0
        for j in neighbours:
            a[i, j] = p / len(neighbours)
    return a


def test_mlgcn_adjacency_matches_the_paper():
    # counts by hand from LABELS (-1 never present; P(j|i) over rows where j is known)
    conditional = conditional_probability(LABELS)
    assert conditional[0, 1] == pytest.approx(3 / 4)  # class 0 in rows 0,1,3,5; class 1 in 0,3,5
    assert conditional[0, 3] == pytest.approx(0 / 3)  # row 5 does not know class 3
    assert conditional[4, 0] == pytest.approx(1.0)  # class 4 only in row 3, which has class 0
    for tau, p in [(0.4, 0.2), (0.5, 0.25), (0.9, 0.3), (0.0, 0.5)]:
        np.testing.assert_allclose(mlgcn_adjacency(conditional, tau, p), paper_adjacency(conditional, tau, p))
    a = mlgcn_adjacency(conditional, 0.4, 0.2)
    np.testing.assert_allclose(a.sum(axis=1), 1.0)  # rows sum to one: the GCN's normalisation is the identity


def test_mlgcn_layer_matches_numpy():
    rng = np.random.default_rng(1)
    conditional = conditional_probability(LABELS)
    layer = GraphConvolutionalClassifiers(5, conditional, 0.4, 0.2, hidden=7)
    x = rng.normal(size=(4, 9)).astype("float32")
    logits = np.asarray(layer(x))
    a = mlgcn_adjacency(conditional, 0.4, 0.2)
    e, w1, w2 = (layer.label_vectors.numpy(), layer.gcn1.kernel.numpy(), layer.gcn2.kernel.numpy())
    h = a @ e @ w1
    h = np.where(h > 0, h, 0.2 * h)  # LeakyReLU(0.2)
    classifiers = a @ h @ w2  # [classes, channels]
    np.testing.assert_allclose(logits, x @ classifiers.T, rtol=1e-4, atol=1e-4)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_ssgrl_layer_matches_numpy():
    rng = np.random.default_rng(2)
    conditional = conditional_probability(LABELS)
    layer = SemanticGraphHead(5, conditional, steps=2, hidden=6)
    features = rng.normal(size=(2, 3, 3, 4)).astype("float32")
    logits = np.asarray(layer(features))
    dense = lambda sub, x: x @ sub.kernel.numpy() + (sub.bias.numpy() if sub.use_bias else 0)
    f = features.reshape(2, 9, 4).astype(np.float64)
    e = layer.label_vectors.numpy()
    # semantic decoupling: low-rank bilinear attention per class over the 9 locations
    joint = np.tanh((f @ layer.image_projection.kernel.numpy())[:, :, None, :]
                    * (e @ layer.label_projection.kernel.numpy())[None, None])
    scores = dense(layer.attention, dense(layer.joint_projection, joint))[..., 0]  # [batch, locations, classes]
    weights = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    nodes = np.einsum("bkc,bkd->bcd", weights, f)
    # semantic interaction: gated graph network, messages along and against P(c'|c) edges
    a = conditional.copy()
    np.fill_diagonal(a, 0)
    wz, wr, wh = np.split(layer.message_gates.kernel.numpy(), 3, axis=1)
    bz, br, bh = np.split(layer.message_gates.bias.numpy(), 3)
    uz, ur = np.split(layer.state_gates.kernel.numpy(), 2, axis=1)
    uh = layer.state_candidate.kernel.numpy()
    h = nodes
    for _ in range(2):
        m = np.concatenate([np.einsum("ij,bjd->bid", a, h), np.einsum("ji,bjd->bid", a, h)], axis=-1)
        z = sigmoid(m @ wz + bz + h @ uz)
        r = sigmoid(m @ wr + br + h @ ur)
        h = (1 - z) * h + z * np.tanh(m @ wh + bh + (r * h) @ uh)
    o = np.tanh(dense(layer.output_projection, np.concatenate([h, nodes], axis=-1)))
    expected = (o * layer.classifier_kernel.numpy()).sum(-1) + layer.classifier_bias.numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)


def write_glove(path):
    rows = {"traffic": [1, 0, 2], "light": [3, 2, 0], "dog": [0, 1, 1], "hot": [2, 2, 2], "cat": [5, 5, 5]}
    text = "".join(f"{w} {' '.join(str(float(v)) for v in vs)}\n" for w, vs in rows.items())
    path.write_text(text + "cat 9.0 9.0 9.0\n")  # a later duplicate never replaces the first
    return str(path)


def test_label_embeddings_from_a_glove_file(tmp_path):
    path = write_glove(tmp_path / "glove.txt")
    vectors = load_label_embeddings(path, ["traffic_light", "Dog", "hot-dog", "cat"])
    np.testing.assert_allclose(vectors, [[2, 1, 1], [0, 1, 1], [1, 1.5, 1.5], [5, 5, 5]])
    with pytest.raises(ConfigError, match=r"label_embeddings='.*glove.txt' has no vector for 'zebra' "
                                          r"\(class 'zebra_dog'\)"):
        load_label_embeddings(path, ["dog", "zebra_dog"])


def test_graph_heads_keep_file_embeddings_fixed(tmp_path):
    path = write_glove(tmp_path / "glove.txt")
    names = ["traffic_light", "dog", "hot-dog", "cat", "light"]
    for head in ("ml_gcn", "ssgrl"):
        model = build_model(config(head=head, label_embeddings=path), 5, train_labels=LABELS, class_names=names)
        vectors = model.get_layer(head).label_vectors
        assert not vectors.trainable
        np.testing.assert_allclose(vectors.numpy(), load_label_embeddings(path, names))
        model.save(str(tmp_path / f"{head}.keras"))
        loaded = keras.saving.load_model(str(tmp_path / f"{head}.keras"), safe_mode=True, compile=False)
        np.testing.assert_array_equal(loaded.get_layer(head).label_vectors.numpy(), vectors.numpy())
        np.testing.assert_array_equal(loaded(images(64), training=False), model(images(64), training=False))
        learned = build_model(config(head=head), 5, train_labels=LABELS).get_layer(head).label_vectors
        assert learned.trainable and learned.shape == (5, 300)


def test_every_head_builds_from_head_settings_alone():
    features = keras.Input((4, 4, 8))
    for name, head in HEADS.items():
        settings = HeadSettings(head=name, groups=GROUPS if name == "groups" else None, graph_hidden=4)
        logits = head.build(features, len(GROUPS) if name == "groups" else 5, settings, train_labels=LABELS)
        assert isinstance(logits, dict) == (name == "groups")


def test_groups_head_needs_one_group_per_label_column():
    with pytest.raises(ConfigError, match=r"one entry per label column \(3\)"):
        build_model(config(head="groups", groups=GROUPS), 3)


def test_graph_heads_need_the_training_labels():
    for head in ("ml_gcn", "ssgrl"):
        with pytest.raises(ConfigError, match=f"head='{head}' builds its label graph from the training labels"):
            build_model(config(head=head), 5)


def test_head_settings_are_checked_before_any_work():
    with pytest.raises(ConfigError, match="head='linear' with groups="):
        load_config(['groups={"a": 3}'])
    with pytest.raises(ConfigError, match="head='groups' with groups=None"):
        load_config(["head=groups"])
    with pytest.raises(ConfigError, match=r"csra_temperatures=\[1, 2\] must list one temperature per head"):
        load_config(["head=csra", "csra_heads=3", "csra_temperatures=[1, 2]"])
    with pytest.raises(ConfigError, match="csra_heads=3 has no temperature set in the paper"):
        load_config(["head=csra", "csra_heads=3"])
    with pytest.raises(ConfigError, match="gcn_threshold=1.5 is out of range"):
        load_config(["head=ml_gcn", "gcn_threshold=1.5"])
    with pytest.raises(ConfigError, match="label_embeddings='missing.txt' is out of range"):
        load_config(["head=ssgrl", "label_embeddings=missing.txt"])
    assert load_config(["head=csra", "csra_heads=3", "csra_temperatures=[1, 2, 99]"]).csra_heads == 3


def test_heads_give_float32_logits_under_mixed_precision():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        for head in sorted(HEADS):
            check_outputs(head_model(head)(images(64), training=False), 2)
    finally:
        keras.mixed_precision.set_global_policy(previous)


@pytest.mark.parametrize("head", ["linear", "groups"])
def test_flatten_pooling_keeps_positions(head, tmp_path):
    extra = {"groups": GROUPS} if head == "groups" else {}
    model = build_model(config(head=head, pooling="flatten", image_size=64, **extra), len(GROUPS) if extra else 5,
                        train_labels=LABELS)
    assert model.input_shape == (None, 64, 64, 3)  # the feature map's size is part of the head
    assert model.get_layer("head_flatten").output.shape[-1] == 2 * 2 * 64  # 2x2 map of 512 * 0.125 channels
    x = images(64)
    outputs = model(x, training=False)
    check_outputs(outputs, 2)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)(x, training=False)
    for key in (GROUPS if extra else [None]):
        np.testing.assert_array_equal(loaded[key] if key else loaded, outputs[key] if key else outputs)
    with pytest.raises(ValueError, match="pooling must be one of"):
        build_model(config(pooling="nope"), 5)
