"""The data modes of run.py: check label files, import datasets, label statistics."""

import inspect
import os

from dataset.importers import load_importer
from dataset.splits import SPLIT_KEYS, SplitSettings, split_path
from utils.config import ConfigError
from utils.run_folder import run_folders
from utils.settings import pick


def run_check(config):
    """Checks every configured label file and its images; returns the exit status, 1 when a row is faulty, else 0.

    Each file gets `<stem>.clean.csv`, `<stem>.check.json` and `<stem>.check.txt` beside it; the
    original is never modified.
    """
    from dataset.check import check_label_file

    splits = pick(SplitSettings, config)
    faulty = 0
    for key in SPLIT_KEYS:
        path = split_path(splits, key)
        if not path:
            continue
        print(f"Checking {key}={path}")
        report = check_label_file(path, class_names=config.class_names, image_root=config.image_root,
                                  groups=config.groups, strict=config.check_strict)
        faulty += len(report["faulty_rows"])
        for line in report["lines"]:
            print(f"  {line}")
        print(f"  {report['rows']} rows, {len(report['faulty_rows'])} faulty; clean file: {report['clean_file']}")
    return 1 if faulty else 0  # faulty rows: a script can stop before training on them


def run_import(config):
    """Converts a dataset's annotations (`import_format`, `import_source`) to a canonical CSV.

    With `import_val_fraction` the CSV is also split into `<stem>.fit.csv` and `<stem>.val.csv`.
    """
    if not config.import_source:
        raise ConfigError("import_source is empty; name the annotation file or folder to import")
    if not config.import_output:
        raise ConfigError("import_output is empty; name the CSV file to write")
    if os.path.exists(config.import_output) and not config.overwrite:
        raise ConfigError(f"import_output={config.import_output!r} exists; choose another name or overwrite=True")
    importer = load_importer(config.import_format)
    options = dict(config.import_options or {})
    if _needs_class_names(importer):  # a format whose files do not name their classes (text)
        options.setdefault("class_names", config.class_names)
    stem = os.path.splitext(config.import_output)[0]
    parts = (f"{stem}.fit.csv", f"{stem}.val.csv")
    if config.import_val_fraction > 0:  # checked before the import, which may take a while
        for part in parts:
            if os.path.exists(part) and not config.overwrite:
                raise ConfigError(f"import_val_fraction={config.import_val_fraction}: {part!r} exists; "
                                  "move it or set overwrite=True")
    try:
        importer(config.import_source, config.import_output, **options)
    except TypeError as error:  # an unknown option: say which setting to fix
        raise ConfigError(f"import_options={config.import_options!r} does not fit import_format="
                          f"{config.import_format!r}: {error}") from None
    if config.import_val_fraction > 0:
        from dataset.split import split_label_file

        for part in parts:
            if os.path.exists(part):  # overwrite=True, checked above
                os.remove(part)
        split_label_file(config.import_output, config.import_val_fraction, config.seed, *parts)
        print(f"Train with train_labels={parts[0]} val_labels={parts[1]}")


def _needs_class_names(importer):
    """Whether an importer's `class_names` argument has no default: its format does not name the classes."""
    parameter = inspect.signature(importer).parameters.get("class_names")
    return parameter is not None and parameter.default is inspect.Parameter.empty


def run_stats(config):
    """Writes label statistics (JSON and PNG) of every configured split to models/<run_name>/stats/<split>/."""
    from dataset.stats import label_statistics, unknown_summary

    out = os.path.join(run_folders(config.run_name)[0], "stats")
    splits = pick(SplitSettings, config)
    for key in SPLIT_KEYS:
        path = split_path(splits, key)
        if path:
            folder = os.path.join(out, key.replace("_labels", ""))
            stats = label_statistics(path, folder, class_names=config.class_names)
            print(f"{key}: {stats['images']} images, {stats['labels_per_image']['mean']:.2f} labels per image; "
                  f"figures in {folder}")
            print(f"  {unknown_summary(stats)}")
