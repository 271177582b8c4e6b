"""mode=import: converts a dataset's own annotations (COCO, Pascal VOC, names-CSV, text) to the canonical CSV."""

import inspect
import os

from dataset.importers import load_importer
from utils.config import ConfigError


def run_import(config):
    """Converts a dataset's annotations (`import_format`, `import_source`) to a canonical CSV.

    With `import_val_fraction` the CSV is also split into `<stem>.fit.csv` and `<stem>.val.csv`.
    """
    # an empty import_source or import_output is refused at load time (utils/rules/modes.py MODE_RULES)
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
