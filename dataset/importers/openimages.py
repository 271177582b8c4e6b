"""Open Images image-level labels to the sparse label format (see `dataset/labels.py`).

The human-verified label files of Open Images (V4 to V7, e.g.
`oidv6-train-annotations-human-imagelabels.csv`) have one row per image and class:

    ImageID,Source,LabelName,Confidence
    000002b66c9c498e,verification,/m/014sv8,1
    000002b66c9c498e,verification,/m/01g317,0

Confidence 1: verified present; 0: verified absent; every class an image has no row for is unknown
(-1). The class descriptions file maps each LabelName (a MID) to its DisplayName, with the header
`LabelName,DisplayName` (`oidv6-class-descriptions.csv`) or without (`class-descriptions-boxable.csv`);
its order is the order of the classes, for every split imported with it. An optional list of
trainable classes keeps only those (one LabelName a line, `oidv6-classes-trainable.txt`; a CSV whose
first column is the LabelName works too). The class names are the DisplayNames; a DisplayName that
several MIDs share (Open Images has some) becomes `<DisplayName> (<MID>)` for each of them, decided on
the whole descriptions file so a name does not change with the trainable list. Images are
`<image_folder>/<ImageID>.jpg`.

The label file is streamed, never held whole: one pass keeps, per row, the image's number and the
class column with its sign (8 bytes a row in two arrays) and one dict entry per ImageID, so rows need
not be sorted or contiguous by ImageID (the official files are sorted). On 3 M synthetic rows
(300 k images, 9,605 classes, 2 shared CPU cores; `python -m benchmarks.bench_openimages_import`):
26-37 s and 0.24 GB at the peak, about 70 bytes a row, so roughly 1 GB and 2-3 minutes per 15 M
rows. An image and class verified both present and absent (by two sources) is left unknown and
counted; an image with no label left after the trainable filter is left out. A LabelName missing
from the descriptions is an error (the files do not belong together), unless a trainable list is
given: then it is one more class not kept. The output is written one row at a time, in the order
the images first appear.
"""

import collections
import csv
import os
from array import array

import numpy as np
from tqdm import tqdm

from dataset.labels import LabelFileError, paths_relative_to
from dataset.sparse_labels import write_sparse_rows

HELP = "Open Images image-level labels (ImageID,Source,LabelName,Confidence) to the sparse format"
COLUMNS = ("ImageID", "LabelName", "Confidence")  # the columns read; Source is not
IMAGE_SUFFIX = ".jpg"  # Open Images' files are <ImageID>.jpg


def add_arguments(parser):
    """The command-line options of `import_openimages`, named like its arguments."""
    parser.add_argument("source", help="human-verified image-level labels CSV (ImageID,Source,LabelName,Confidence)")
    parser.add_argument("--class-descriptions", required=True,
                        help="LabelName,DisplayName CSV (oidv6-class-descriptions.csv)")
    parser.add_argument("--trainable-classes", default="",
                        help="file of the LabelNames to keep, one a line (default: every described class)")
    parser.add_argument("--image-folder", default=None,
                        help="folder of the <ImageID>.jpg files (default: the source file's folder)")


def import_openimages(path, out_csv, class_descriptions, trainable_classes="", image_folder=None):
    """Imports an Open Images image-level label file to a sparse label file.

    Args:
        path: str. The label CSV with the header `ImageID,Source,LabelName,Confidence`.
        out_csv: str. Output sparse label file (`*.sparse.csv` by convention).
        class_descriptions: str. The `LabelName,DisplayName` CSV.
        trainable_classes: str. File of the LabelNames to keep; "": every described class.
        image_folder: str or None. Folder of the `<ImageID>.jpg` files; default the label file's folder.

    Returns:
        str. `out_csv`. Not the LabelTable other importers return: for Open Images it would be dense
        (1.7 M x 9,605 int32 is 65 GB); `read_labels(out_csv)` gives it for a file that fits.
    """
    if os.path.abspath(out_csv) == os.path.abspath(path):
        raise ValueError(f"{out_csv}: the output would overwrite the file being imported; choose another path")
    mids, class_names = read_classes(class_descriptions, trainable_classes)
    image_ids, rows, codes, skipped = _read_label_rows(path, {mid: j for j, mid in enumerate(mids)},
                                                       trainable_classes)
    present, absent, conflicts = _known_labels(len(image_ids), len(mids), rows, codes)
    del rows, codes
    folder = image_folder if image_folder else os.path.dirname(os.path.abspath(path))
    names = paths_relative_to(out_csv, [os.path.join(folder, image_id + IMAGE_SUFFIX) for image_id in image_ids])
    if not len(present) + len(absent):
        raise ValueError(f"{path}: nothing to import (no image has a label of the classes kept)")
    written = write_sparse_rows(out_csv, class_names, _image_rows(names, len(mids), present, absent))
    print(_summary(f"{path} -> {out_csv}", class_names, written, present, absent,
                   (skipped, len(image_ids) - written, conflicts)))
    return out_csv


def read_classes(class_descriptions, trainable_classes=""):
    """The kept classes: (MIDs, unique class names), in the descriptions file's order.

    Args:
        class_descriptions: str. The `LabelName,DisplayName` CSV, with or without its header.
        trainable_classes: str. File of the LabelNames to keep; "": all.
    """
    described = _descriptions(class_descriptions)
    shared = {name for name, n in collections.Counter(name for name, _ in described.values()).items() if n > 1}
    keep = _trainable(trainable_classes, described) if trainable_classes else None
    mids, names = [], []
    for mid, (name, _) in described.items():
        if keep is None or mid in keep:
            mids.append(mid)
            names.append(f"{name} ({mid})" if name in shared else name)
    repeated = sorted(name for name, n in collections.Counter(names).items() if n > 1)
    if repeated:  # a DisplayName equal to another's "<name> (<MID>)": not in Open Images
        raise LabelFileError(f"{class_descriptions}: class names {repeated} repeat after adding the MIDs")
    return mids, names


def _descriptions(path):
    """{MID: (DisplayName, line)} in file order."""
    if not os.path.isfile(path):
        raise LabelFileError(f"{path}: class descriptions file not found")
    described = {}
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        for cells in reader:
            line = reader.line_num
            if not cells or all(not c.strip() for c in cells):
                continue
            if line == 1 and [c.strip() for c in cells] == ["LabelName", "DisplayName"]:
                continue  # V6's header; the boxable file of V4/V5 has none
            if len(cells) != 2 or not cells[0].strip() or not cells[1].strip():
                raise LabelFileError(f"{path}:{line}: expected LabelName,DisplayName, found {cells}")
            mid, name = cells[0].strip(), " ".join(cells[1].split())
            if mid in described:
                raise LabelFileError(f"{path}:{line}: LabelName {mid!r} repeats line {described[mid][1]}")
            if ";" in name:
                raise LabelFileError(f"{path}:{line}: DisplayName {name!r} holds ';', which the sparse format "
                                     "puts between class names; edit it")
            described[mid] = (name, line)
    if not described:
        raise LabelFileError(f"{path}: no classes in the class descriptions file")
    return described


def _trainable(path, described):
    """The LabelNames of a trainable-classes file (first comma-separated field of each line)."""
    if not os.path.isfile(path):
        raise LabelFileError(f"{path}: trainable classes file not found")
    keep = set()
    with open(path, encoding="utf-8-sig") as f:
        for line, text in enumerate(f, start=1):
            mid = text.split(",")[0].strip()
            if not mid or (line == 1 and mid == "LabelName"):
                continue
            if mid not in described:
                raise LabelFileError(f"{path}:{line}: LabelName {mid!r} is not in the class descriptions")
            keep.add(mid)
    if not keep:
        raise LabelFileError(f"{path}: no LabelName in the trainable classes file")
    return keep


def _read_label_rows(path, column_of, trainable_classes):
    """One streamed pass: (ImageIDs in first-seen order, row image numbers, signed columns, rows skipped).

    A signed column is column + 1 for a class present, -(column + 1) for one absent.
    """
    if not os.path.isfile(path):
        raise LabelFileError(f"{path}: label file not found")
    image_of, image_ids, rows, codes, skipped = {}, [], array("i"), array("i"), 0
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if not set(COLUMNS) <= set(header):
            raise LabelFileError(f"{path}:1: expected Open Images' header ImageID,Source,LabelName,Confidence, "
                                 f"found {header}")
        image_at, label_at, confidence_at = (header.index(name) for name in COLUMNS)
        for cells in tqdm(reader, desc="label rows", unit="row", mininterval=0.5, disable=None):
            if not cells or all(not c.strip() for c in cells):
                continue
            line = reader.line_num
            if len(cells) != len(header):
                raise LabelFileError(f"{path}:{line}: expected {len(header)} columns like the header, "
                                     f"found {len(cells)}")
            image_id, mid = cells[image_at].strip(), cells[label_at].strip()
            if not image_id:
                raise LabelFileError(f"{path}:{line}: empty ImageID")
            if image_id not in image_of:
                image_of[image_id] = len(image_ids)
                image_ids.append(image_id)
            column = column_of.get(mid)
            if column is None:
                if not trainable_classes:
                    raise LabelFileError(f"{path}:{line}: LabelName {mid!r} is not in the class descriptions")
                skipped += 1  # a class left out by the trainable list (or not described at all)
                continue
            rows.append(image_of[image_id])
            codes.append(_sign(path, line, cells[confidence_at]) * (column + 1))
    return image_ids, rows, codes, skipped


def _sign(path, line, confidence):
    """1 for Confidence 1 (verified present), -1 for 0 (verified absent)."""
    try:
        value = float(confidence)
    except ValueError:
        value = None
    if value not in (0.0, 1.0):
        raise LabelFileError(f"{path}:{line}: Confidence {confidence.strip()!r}; expected 1 (verified present) or 0 "
                             "(verified absent), as in the human-verified label files")
    return 1 if value == 1.0 else -1


def _known_labels(num_images, num_classes, rows, codes):
    """Sorted keys (image * classes + column) of the labels present and absent, and the conflicts dropped."""
    codes = np.frombuffer(codes, np.int32)
    keys = np.frombuffer(rows, np.int32).astype(np.int64) * num_classes + (np.abs(codes) - 1)
    present, absent = np.unique(keys[codes > 0]), np.unique(keys[codes < 0])
    conflicts = np.intersect1d(present, absent, assume_unique=True)
    present = np.setdiff1d(present, conflicts, assume_unique=True)
    absent = np.setdiff1d(absent, conflicts, assume_unique=True)
    return present, absent, len(conflicts)


def _image_rows(names, num_classes, present, absent):
    """(name, present columns, absent columns) per image with a known label, in image order."""
    starts = [np.searchsorted(keys // num_classes, np.arange(len(names) + 1)) for keys in (present, absent)]
    columns = [keys % num_classes for keys in (present, absent)]
    for i, name in enumerate(names):
        known = [column[start[i]:start[i + 1]] for column, start in zip(columns, starts)]
        if len(known[0]) or len(known[1]):
            yield name, known[0].tolist(), known[1].tolist()


def _summary(title, class_names, written, present, absent, left_out):
    skipped, dropped, conflicts = left_out
    positives = np.bincount(present % len(class_names), minlength=len(class_names))
    unused = [name for name, n in zip(class_names, positives) if n == 0]
    lines = [
        title,
        f"  images: {written}   classes: {len(class_names)}",
        f"  labels per image: {len(present) / written:.3f} present, {len(absent) / written:.3f} absent; "
        "every other class unknown (-1)",
        f"  left out: {skipped} rows of classes not kept, {dropped} images with no label kept, "
        f"{conflicts} labels verified both present and absent (unknown)",
    ]
    if unused:
        lines.append(f"  classes with no positive image: {len(unused)}, e.g. {unused[:5]}")
    return "\n".join(lines)
