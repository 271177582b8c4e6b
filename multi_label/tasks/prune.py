"""mode=prune: network slimming of a trained checkpoint into a thinner model, with the figures before and after.

    python run.py mode=prune run_name=mine prune_ratio=0.5

Loads the checkpoint (`checkpoint`, or models/<run_name>/best.keras) and the settings its run
was trained with (config.json beside it), removes the `prune_ratio` share of the prunable channels
with the smallest |BatchNorm gamma| (multi_label/slimming/), builds the thinner network and copies
the kept weights into it. It writes into a folder of its own, `prune_dir` (default
models/<run_name>/pruned-<prune_ratio>/), never into one that exists unless overwrite=True; the
files are written into `<folder>.partial/` and moved in once all are complete, so a failed run leaves
no folder that looks finished:

- model.keras: the pruned model, not fine-tuned, and classes.json (so a fine-tuning run that
  loads it as backbone_weights copies its head too);
- channels.json: the plan, which the `pruned_channels` setting reads to build the same network;
- pruning.json: parameters, MACs per image, CPU milliseconds at batch 1 and 32 and the test
  mAP (accuracy for a groups head), before and after.

Then it prints the table and the command that fine-tunes the pruned model.
"""

import dataclasses
import json
import os
import shlex
import shutil

import keras

from configs import Config
from dataset.run_splits import load_split
from multi_label.evaluation.group_metrics import evaluate_groups, predict_groups
from multi_label.evaluation.inference import predict_dataset, sigmoid
from multi_label.evaluation.metrics import evaluate_all
from multi_label.model import ModelSettings, build_model
from multi_label.slimming.costs import measure
from multi_label.slimming.families import FAMILIES
from multi_label.slimming.plan import read_plan, write_plan
from multi_label.slimming.pruning import choose_plan, pruned_model
from multi_label.slimming.pruning_table import pruning_table
from multi_label.tasks.inputs import input_dataset
from multi_label.tasks.settings import model_settings, split_settings
from multi_label.trained_run import CLASSES_FILE, CONFIG_FILE, load_checkpoint, resolve_checkpoint, saved_class_names
from utils.atomic import write_text
from utils.config import ConfigError, renamed_settings
from utils.rules import LABEL_GRAPH_HEADS
from utils.run_folder import run_folders

MODEL_FILE, PLAN_FILE, FIGURES_FILE = "model.keras", "channels.json", "pruning.json"
# Settings of the trained run that a fine-tuning command leaves out or sets itself.
NOT_REPEATED = {"mode", "run_name", "overwrite", "checkpoint", "backbone_weights", "pruned_channels", "slimming_l1",
                "prune_ratio", "prune_dir"}


def run_prune(config):
    """Prunes the checkpoint; writes the pruned model, its plan and the figures; prints the fine-tuning command."""
    checkpoint = resolve_checkpoint(config.checkpoint, config.run_name)
    run, saved = trained_config(config, checkpoint)
    if run.backbone not in FAMILIES:
        raise ConfigError(f"checkpoint={checkpoint!r} has backbone={run.backbone!r}; network slimming prunes "
                          f"{sorted(FAMILIES)} only")
    folder = output_folder(config)
    work = fresh_folder(folder + ".partial")  # moved into `folder` once every file is written
    class_names = saved_class_names(checkpoint) or _test_class_names(run)
    original = load_checkpoint(checkpoint, groups=run.groups, head=run.head)
    current = read_plan(run.pruned_channels) if run.pruned_channels else None  # pruned before: pruned again
    plan, threshold = choose_plan(original, run.backbone, run.backbone_width, config.prune_ratio, current)
    plan_path = os.path.join(work, PLAN_FILE)
    policy = original.get_layer(next(iter(plan.widths))).dtype_policy.name
    thin = pruned_model(original, plan, lambda plan: thin_model(run, policy, plan, plan_path, class_names), current)
    thin.save(os.path.join(work, MODEL_FILE))
    write_text(os.path.join(work, CLASSES_FILE), json.dumps(class_names) + "\n")

    table = load_split(split_settings(run), "test_labels", None if run.groups else class_names)
    score_name = "accuracy" if run.groups else "mAP"
    figures = {"checkpoint": checkpoint, "prune_ratio": config.prune_ratio, "threshold": threshold,
               "channels": channel_counts(original, thin, FAMILIES[run.backbone]), "image_size": run.image_size}
    costs = measure([original, thin], run.image_size)
    for key, model, cost in (("before", original, costs[0]), ("after", thin, costs[1])):
        figures[key] = {**cost, "test": test_score(run, table, model)}
    figures["test_score"] = score_name
    write_text(os.path.join(work, FIGURES_FILE), json.dumps(figures, indent=2) + "\n")
    move_files(work, folder)
    model_path, plan_path = os.path.join(folder, MODEL_FILE), os.path.join(folder, PLAN_FILE)
    print(f"\nPruned {figures['channels']['removed']} of {figures['channels']['prunable']} prunable channels "
          f"(|gamma| <= {threshold:.3g}) of {checkpoint}:")
    print(pruning_table(figures["before"], figures["after"], score_name))
    print(f"Wrote {model_path}, {plan_path} and {os.path.join(folder, FIGURES_FILE)}")
    print("Fine-tune the pruned model (the paper trains it again with the original schedule; set epochs and lr "
          "as you see fit):\n  "
          + fine_tune_command(saved, f"{config.run_name}-pruned-{config.prune_ratio:g}", model_path, plan_path))


def trained_config(config, checkpoint):
    """(config, saved settings): `config` with the model and input settings of the checkpoint's run.

    They come from the run's config.json beside the checkpoint; without one, the settings given
    are taken to be the run's.
    """
    path = os.path.join(os.path.dirname(os.path.abspath(checkpoint)), CONFIG_FILE)
    if not os.path.isfile(path):
        return config, dataclasses.asdict(config)
    with open(path, encoding="utf-8") as f:
        saved = renamed_settings(json.load(f))
    keys = {field.name for field in dataclasses.fields(ModelSettings)} | {"center_crop", "groups"}
    return dataclasses.replace(config, **{key: saved[key] for key in keys if key in saved}), saved


def output_folder(config):
    """The new folder of the pruned model; ConfigError when it exists, unless overwrite=True."""
    folder = config.prune_dir or os.path.join(run_folders(config.run_name)[0], f"pruned-{config.prune_ratio:g}")
    if os.path.exists(folder) and not config.overwrite:
        raise ConfigError(f"prune_dir={folder!r} exists; choose another prune_dir (or prune_ratio), or "
                          "overwrite=True to write over its files")
    return folder


def fresh_folder(path):
    """An empty folder at `path`: a failed earlier attempt's leftovers (never a finished result) are removed."""
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def move_files(source, folder):
    """Moves every file of `source` into `folder` (each rename atomic) and removes `source`."""
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(source):
        os.replace(os.path.join(source, name), os.path.join(folder, name))
    os.rmdir(source)


def thin_model(run, policy_name, plan, plan_path, class_names):
    """The run's model built with `plan` (written to `plan_path` first), in the checkpoint's dtype policy."""
    write_plan(plan_path, plan)
    train_labels = None
    if run.head in LABEL_GRAPH_HEADS:  # their label graph is built from the training labels
        train_labels = load_split(split_settings(run), "train_labels", class_names).labels
    settings = model_settings(run, backbone_weights="none", pruned_channels=plan_path, slimming_l1=0.0)
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy_name)
    try:
        return build_model(settings, len(class_names), train_labels=train_labels, class_names=class_names)
    finally:
        keras.config.set_dtype_policy(policy)


def channel_counts(original, thin, family):
    """{"prunable": channels of the prunable layers before, "removed": how many of them the thin model lacks}."""
    before = sum(original.get_layer(p.conv).filters for p in family.prunable(original))
    after = sum(thin.get_layer(p.conv).filters for p in family.prunable(original))
    return {"prunable": before, "removed": before - after}


def test_score(run, table, model):
    """The test mAP of the model (mean group accuracy for a groups head); None without test_labels."""
    if table is None:
        return None
    dataset, _ = input_dataset(run, table, training=False)
    if run.groups:
        logits, labels, _ = predict_groups(model, dataset, list(run.groups))
        return evaluate_groups(labels, logits, run.groups)["accuracy"]
    logits, labels, _ = predict_dataset(model, dataset)
    return evaluate_all(labels, sigmoid(logits), table.class_names, top_k=None)["mAP"]


def _test_class_names(run):
    table = load_split(split_settings(run), "train_labels")
    if table is None:
        raise ConfigError("the checkpoint has no classes.json beside it and train_labels is empty; pruning needs "
                          "the class names")
    return table.class_names


def fine_tune_command(saved, run_name, model_path, plan_path):
    """`python run.py ...` training the pruned model with the run's settings (those differing from the defaults).

    Args:
        saved: dict. The settings of the run that trained the original model.
        run_name: str. The fine-tuning run's name.
        model_path: str. The pruned model.
        plan_path: str. Its plan.
    """
    defaults = dataclasses.asdict(Config())
    parts = ["python", "run.py", shlex.quote(f"run_name={run_name}")]
    for key, value in saved.items():
        if key in NOT_REPEATED or key not in defaults or json.dumps(value) == json.dumps(defaults[key]):
            continue
        text = value if isinstance(value, str) and value and shlex.quote(value) == value else repr(value)
        parts.append(shlex.quote(f"{key}={text}"))
    parts += [shlex.quote(f"backbone_weights={model_path}"), shlex.quote(f"pruned_channels={plan_path}")]
    return " ".join(parts)
