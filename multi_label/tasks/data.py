"""The data modes of run.py: check label files, import datasets, label statistics."""

import os

from utils.config import ConfigError
from utils.run_folder import run_folders

SPLIT_KEYS = ("train_labels", "val_labels", "test_labels")
IMPORTERS = {  # import_format -> (module, function): imported on use, each pulls in only what it needs
    "coco": ("dataset.importers.coco", "import_coco"),
    "voc": ("dataset.importers.voc", "import_voc"),
    "names": ("dataset.importers.names_csv", "import_names_csv"),
    "text": ("dataset.importers.text", "import_text"),
}


def run_check(config):
    """Checks every configured label file and its images; returns the number of faulty rows.

    Each file gets `<stem>.clean.csv`, `<stem>.check.json` and `<stem>.check.txt` beside it; the
    original is never modified.
    """
    from dataset.check import check_label_file

    faulty = 0
    for key in SPLIT_KEYS:
        path = getattr(config, key)
        if not path:
            continue
        if not os.path.isfile(path):
            raise ConfigError(f"{key}={path!r}: label file not found")
        print(f"Checking {key}={path}")
        report = check_label_file(path, class_names=config.class_names, image_root=config.image_root,
                                  groups=getattr(config, "groups", None), strict=config.check_strict)
        faulty += len(report["faulty_rows"])
        for line in report["lines"]:
            print(f"  {line}")
        print(f"  {report['rows']} rows, {len(report['faulty_rows'])} faulty; clean file: {report['clean_file']}")
    return faulty


def run_import(config):
    """Converts a dataset's annotations (`import_format`, `import_source`) to a canonical CSV."""
    if not config.import_source:
        raise ConfigError("import_source is empty; name the annotation file or folder to import")
    if not config.import_output:
        raise ConfigError("import_output is empty; name the CSV file to write")
    if os.path.exists(config.import_output) and not config.overwrite:
        raise ConfigError(f"import_output={config.import_output!r} exists; choose another name or overwrite=True")
    module_name, function_name = IMPORTERS[config.import_format]
    import importlib
    importer = getattr(importlib.import_module(module_name), function_name)
    options = dict(config.import_options or {})
    if config.import_format == "text":
        options.setdefault("class_names", config.class_names)
    stem = os.path.splitext(config.import_output)[0]
    parts = (f"{stem}.fit.csv", f"{stem}.val.csv")
    if config.import_val_fraction > 0:  # checked before the import, which may take a while
        for part in parts:
            if os.path.exists(part) and not config.overwrite:
                raise ConfigError(f"import_val_fraction={config.import_val_fraction}: {part!r} exists; "
                                  "move it or set overwrite=True")
    try:
        result = importer(config.import_source, config.import_output, **options)
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
    return result


def run_stats(config):
    """Writes label statistics (JSON and PNG) of every configured split to models/<run_name>/stats/."""
    from dataset.stats import label_statistics

    out = os.path.join(run_folders(config)[0], "stats")
    for key in SPLIT_KEYS:
        path = getattr(config, key)
        if path:
            if not os.path.isfile(path):
                raise ConfigError(f"{key}={path!r}: label file not found")
            folder = os.path.join(out, key.replace("_labels", ""))
            stats = label_statistics(path, folder, class_names=config.class_names)
            print(f"{key}: {stats['images']} images, {stats['labels_per_image']['mean']:.2f} labels per image; "
                  f"figures in {folder}")
    return out
