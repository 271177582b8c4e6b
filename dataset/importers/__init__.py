"""Importers: other label formats to the canonical label CSV (see `dataset/labels.py`).

Each format has its own module (`coco`, `voc`, `names_csv`, `text`), named in `IMPORTERS`, with
one `import_*` function that reads the source, then calls `write_imported` below, which every
importer shares: it writes the CSV atomically with image paths relative to the CSV's folder,
prints a summary and returns the table that `read_labels` would give for the new file. Each
module also has `HELP`, the format in one line, and `add_arguments(parser)`, its command-line
options (`python -m dataset.importers.cli`), named like its function's arguments.
"""

import importlib
import os

import numpy as np

from dataset.labels import LabelTable, write_labels_csv

# import_format -> (module, function); imported on use, so each format pulls in only what it needs.
IMPORTERS = {
    "coco": ("dataset.importers.coco", "import_coco"),
    "voc": ("dataset.importers.voc", "import_voc"),
    "names": ("dataset.importers.names_csv", "import_names_csv"),
    "text": ("dataset.importers.text", "import_text"),
}


def importer_module(import_format):
    """The module of a format in `IMPORTERS`, imported now.

    Args:
        import_format: str. A key of `IMPORTERS`.
    """
    if import_format not in IMPORTERS:
        raise ValueError(f"import_format must be one of {sorted(IMPORTERS)}. Received: import_format={import_format!r}")
    return importlib.import_module(IMPORTERS[import_format][0])


def load_importer(import_format):
    """The `import_*(source, out_csv, **options)` function of a format in `IMPORTERS`.

    Args:
        import_format: str. A key of `IMPORTERS`.
    """
    return getattr(importer_module(import_format), IMPORTERS[import_format][1])


def paths_relative_to(out_csv, paths):
    """Image paths as the CSV at `out_csv` should hold them.

    Relative to the CSV's folder, so `read_labels` resolves them with no `image_root`; absolute
    only where no relative path exists (another drive on Windows).

    Args:
        out_csv: str. The CSV that will hold the paths.
        paths: list[str]. Image paths, absolute or relative to the working directory.

    Returns:
        list[str]. One path per input, with `/` separators so the file works on every OS.
    """
    folder = os.path.dirname(os.path.abspath(out_csv))
    by_dir = {}  # relpath is slow; images share few folders, so convert each folder once
    out = []
    for path in paths:
        directory, base = os.path.split(os.path.abspath(path))
        if directory not in by_dir:
            try:
                by_dir[directory] = os.path.relpath(directory, folder)
            except ValueError:
                by_dir[directory] = directory
        relative = os.path.join(by_dir[directory], base) if by_dir[directory] != "." else base
        out.append(relative.replace(os.sep, "/"))
    return out


def write_imported(out_csv, names, class_names, labels, source):
    """Writes an imported table, prints its summary and returns it.

    Args:
        out_csv: str. Output CSV.
        names: list[str]. Image paths exactly as they go in the CSV.
        class_names: list[str]. Column names.
        labels: np.ndarray. int [images, classes] of 1 / 0 / -1.
        source: str. What was imported, for the summary line.

    Returns:
        LabelTable. What `read_labels(out_csv)` returns, built without re-reading the file.
    """
    if not names:
        raise ValueError(f"{source}: nothing to import (no images found)")
    if os.path.abspath(out_csv) == os.path.abspath(source):
        raise ValueError(f"{out_csv}: the output would overwrite the file being imported; choose another path")
    labels = np.asarray(labels, np.int32)
    write_labels_csv(out_csv, names, class_names, labels)
    print(summary(labels, class_names, f"{source} -> {out_csv}"))
    folder = os.path.dirname(os.path.abspath(out_csv))
    return LabelTable(
        images=[os.path.normpath(os.path.join(folder, name)) for name in names],
        names=list(names),
        class_names=list(class_names),
        labels=labels,
        lines=list(range(2, len(names) + 2)),  # line 1 is the header
        source=out_csv,
    )


def summary(labels, class_names, title):
    """A few lines on what a label table holds: images, classes, labels per image.

    Args:
        labels: np.ndarray. int [images, classes] of 1 / 0 / -1.
        class_names: list[str]. Column names.
        title: str. First line.

    Returns:
        str.
    """
    per_image = (labels == 1).sum(axis=1)
    histogram = np.bincount(per_image, minlength=1) if len(per_image) else np.zeros(1, np.int64)
    lines = [
        title,
        f"  images: {len(labels)}   classes: {len(class_names)}",
        f"  labels per image: mean {per_image.mean():.3f}   (positives only; -1 values: {int((labels == -1).sum())})",
        "  histogram: " + ", ".join(f"{k}: {int(n)}" for k, n in enumerate(histogram) if n),
    ]
    unused = [name for name, n in zip(class_names, (labels == 1).sum(axis=0)) if n == 0]
    if unused:
        lines.append(f"  classes with no positive image: {unused}")
    return "\n".join(lines)
