"""What a mode needs: `MODE_RULES`, and those of mode=find_label_errors.

A mode is refused at load time when it lacks what it reads (mode=predict needs `input`). Settings of
other modes are left alone (`input` with mode=train): one config file serves them all. The messages of
the checks that the modes made before are kept.
"""

import os

from utils.rules.rule import Rule

MODE_RULES = (
    Rule(("mode", "train_labels"), lambda c: c.mode == "train" and not c.train_labels,
         lambda c: "train_labels is empty; training needs a label file"),
    Rule(("mode", "lr_schedule", "val_labels"),
         lambda c: c.mode == "train" and c.lr_schedule == "plateau" and not c.val_labels,
         lambda c: "lr_schedule='plateau' with val_labels='': the plateau schedule cuts the learning rate when "
                   "the validation mAP stops improving; set val_labels, or another lr_schedule"),
    Rule(("mode", "early_stopping_patience", "val_labels"),
         lambda c: c.mode == "train" and c.early_stopping_patience > 0 and not c.val_labels,
         lambda c: f"early_stopping_patience={c.early_stopping_patience} with val_labels='': early stopping "
                   "watches the validation mAP; set val_labels, or early_stopping_patience=0"),
    Rule(("mode", "strategy"),
         lambda c: c.mode == "train" and c.strategy == "multi_worker" and "TF_CONFIG" not in os.environ,
         lambda c: "strategy='multi_worker' needs the TF_CONFIG environment variable (the cluster and this "
                   "worker's task); see learning_notes/06-scaling.md"),
    Rule(("mode", "test_labels"), lambda c: c.mode == "test" and not c.test_labels,
         lambda c: "test_labels is empty; mode=test needs a label file"),
    Rule(("mode", "input"), lambda c: c.mode == "predict" and not c.input,
         lambda c: "input is empty; mode=predict needs input=<image | folder | label file>"),
    Rule(("mode", "train_labels"), lambda c: c.mode == "debug" and not c.train_labels,
         lambda c: "train_labels is empty; mode=debug needs a training batch"),
    Rule(("mode", "import_source"), lambda c: c.mode == "import" and not c.import_source,
         lambda c: "import_source is empty; name the annotation file or folder to import"),
    Rule(("mode", "import_output"), lambda c: c.mode == "import" and not c.import_output,
         lambda c: "import_output is empty; name the CSV file to write"),
    Rule(("mode", "formats", "train_labels"),
         lambda c: c.mode == "convert" and "tflite_int8" in c.formats and not c.train_labels,
         lambda c: "formats includes 'tflite_int8' with train_labels='': tflite_int8 is calibrated on training "
                   "images; set train_labels, or leave tflite_int8 out of formats"),
    Rule(("mode", "train_labels", "val_labels", "test_labels"),
         lambda c: c.mode in ("check", "stats") and not (c.train_labels or c.val_labels or c.test_labels),
         lambda c: f"mode={c.mode} with train_labels, val_labels and test_labels all empty: name at least one "
                   "label file"),
)


def _finding(c):
    return c.mode == "find_label_errors"


def _fold_epochs(c):
    return c.epochs if c.label_error_epochs is None else c.label_error_epochs


# mode=find_label_errors: each fold trains without a validation split (multi_label/tasks/find_label_errors.py
# says why), so what needs one is refused here, not found out after the first fold.
LABEL_ERROR_RULES = (
    Rule(("mode", "train_labels"), lambda c: _finding(c) and not c.train_labels,
         lambda c: "train_labels is empty; mode=find_label_errors needs the label file to check"),
    Rule(("mode", "head"), lambda c: _finding(c) and c.head == "groups",
         lambda c: "mode=find_label_errors with head='groups': it ranks 1/0 labels of sigmoid classes, not group "
                   "indices; choose another head"),
    Rule(("mode", "lr_schedule"), lambda c: _finding(c) and c.lr_schedule == "plateau",
         lambda c: "mode=find_label_errors with lr_schedule='plateau': each fold trains without a validation split, "
                   "which the plateau schedule watches; choose another lr_schedule"),
    Rule(("mode", "early_stopping_patience"), lambda c: _finding(c) and c.early_stopping_patience > 0,
         lambda c: f"mode=find_label_errors with early_stopping_patience={c.early_stopping_patience}: each fold trains "
                   "without a validation split, which early stopping watches; set early_stopping_patience=0"),
    Rule(("warmup_epochs", "label_error_epochs"),
         lambda c: _finding(c) and c.warmup_steps == 0 and c.warmup_epochs >= _fold_epochs(c),
         lambda c: f"warmup_epochs={c.warmup_epochs} with label_error_epochs={c.label_error_epochs}: the warmup would "
                   "last each fold's whole training; expected warmup_epochs < label_error_epochs"),
)
