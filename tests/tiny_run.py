"""Tiny demo data and an untrained tiny model for the evaluation tests: seconds, no training."""

import dataclasses
import json
import os

import keras

from configs import Config
from dataset.demo import CLASS_NAMES, build_demo_data
from multi_label.model import build_model
from multi_label.tasks.settings import model_settings
from utils.config import validate

# precision pinned: the exact comparisons hold on every machine (auto picks bfloat16 on CPUs with AMX)
TINY = {"image_size": 32, "backbone_width": 0.125, "batch_size": 8, "shuffle_buffer": 16, "run_name": "tiny",
        "precision": "float32"}


def tiny_config(data_dir, **changes):
    """A validated Config on 60 demo images in `data_dir` (built once), train/val/test 42/6/12."""
    paths = {split: os.path.join(str(data_dir), f"{split}.csv") for split in ("train", "val", "test")}
    if not all(os.path.isfile(p) for p in paths.values()):
        build_demo_data(str(data_dir), 60, seed=0)
    settings = {**TINY, "train_labels": paths["train"], "val_labels": paths["val"], "test_labels": paths["test"],
                "demo_data_dir": str(data_dir), **changes}
    return validate(dataclasses.replace(Config(), **settings))


def save_tiny_model(config, folder, class_names=CLASS_NAMES, seed=0):
    """Saves an untrained model as `<folder>/best.keras` with `classes.json`; returns (path, model)."""
    keras.utils.set_random_seed(seed)
    model = build_model(model_settings(config), len(class_names))
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(str(folder), "best.keras")
    model.save(path)
    with open(os.path.join(str(folder), "classes.json"), "w") as f:
        json.dump(list(class_names), f)
    return path, model
