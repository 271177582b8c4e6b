"""The ranges and rules of mode=find_label_errors (label_error_*), checked with the others at load time.

utils/config_rules.py merges `LABEL_QUALITY_LIMITS` into its LIMITS and `LABEL_QUALITY_RULES` (as
Rule(keys, broken, message)) into its RULES; they live here to keep that module a readable size.
Each fold trains without a validation split (multi_label/tasks/find_label_errors.py says why), so
what needs one is refused here, not found out after the first fold.
"""


def _finding(c):
    return c.mode == "find_label_errors"


def _fold_epochs(c):
    return c.epochs if c.label_error_epochs is None else c.label_error_epochs


# key -> (test, what is allowed), as config_rules.LIMITS.
LABEL_QUALITY_LIMITS = {
    "label_error_folds": (lambda v: v >= 2, "an integer >= 2 (each fold is predicted by a model trained on the rest)"),
    "label_error_epochs": (lambda v: v is None or v >= 1, "None (the run's epochs) or an integer >= 1"),
    "label_error_examples": (lambda v: v >= 0, "an integer >= 0 (0: no image grid)"),
}

# (keys, broken(config), message(config)), the fields of config_rules.Rule.
LABEL_QUALITY_RULES = (
    (("mode", "train_labels"), lambda c: _finding(c) and not c.train_labels,
     lambda c: "train_labels is empty; mode=find_label_errors needs the label file to check"),
    (("mode", "head"), lambda c: _finding(c) and c.head == "groups",
     lambda c: "mode=find_label_errors with head='groups': it ranks 1/0 labels of sigmoid classes, not group "
               "indices; choose another head"),
    (("mode", "lr_schedule"), lambda c: _finding(c) and c.lr_schedule == "plateau",
     lambda c: "mode=find_label_errors with lr_schedule='plateau': each fold trains without a validation split, "
               "which the plateau schedule watches; choose another lr_schedule"),
    (("mode", "early_stopping_patience"), lambda c: _finding(c) and c.early_stopping_patience > 0,
     lambda c: f"mode=find_label_errors with early_stopping_patience={c.early_stopping_patience}: each fold trains "
               "without a validation split, which early stopping watches; set early_stopping_patience=0"),
    (("warmup_epochs", "label_error_epochs"),
     lambda c: _finding(c) and c.warmup_steps == 0 and c.warmup_epochs >= _fold_epochs(c),
     lambda c: f"warmup_epochs={c.warmup_epochs} with label_error_epochs={c.label_error_epochs}: the warmup would "
               "last each fold's whole training; expected warmup_epochs < label_error_epochs"),
)
