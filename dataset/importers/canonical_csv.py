"""What every importer ends with: the imported table written as the canonical label CSV, and its summary.

Each format's `import_*` function reads its source, then calls `write_imported`: it writes the CSV
atomically with image paths relative to the CSV's folder (`dataset.labels.paths_relative_to`),
prints a summary and returns the table that `read_labels` would give for the new file.
"""

import os

import numpy as np

from dataset.labels import LabelTable, write_labels_csv


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
