"""Pascal VOC XML annotations to the canonical label CSV.

Two layouts are understood:

    VOC:   <root>/Annotations/*.xml, images in <root>/JPEGImages/, optional split lists in
           <root>/ImageSets/Main/<split>.txt
    flat:  <root>/*.xml with each image beside its XML (as LabelImg saves them)

An image is labelled with the `<name>` of every `<object>` (parts inside an object are not
classes). A class marked `<difficult>1</difficult>` on every one of its objects in an image gets
the value `difficult` (default -1, unknown): VOC's own evaluation ignores difficult objects, so
neither "present" nor "absent" is a safe training target.
"""

import glob
import os
import warnings
import xml.etree.ElementTree as ET

import numpy as np
from tqdm import tqdm

from dataset.arguments import class_list
from dataset.importers.canonical_csv import write_imported
from dataset.labels import LabelFileError, paths_relative_to

HELP = "Pascal VOC XML files (VOC layout, or XML beside each image)"


def add_arguments(parser):
    """The command-line options of `import_voc`, named like its arguments."""
    parser.add_argument("source", help="VOC folder (with Annotations/) or a folder of XML files beside their images")
    parser.add_argument("--split", default=None,
                        help="VOC layout: split name in ImageSets/Main (train, val, trainval) or a list file")
    parser.add_argument("--classes", dest="class_names", metavar="CLASSES", type=class_list, default=None,
                        help="class names a,b,c or @file, in column order (default: found in the files, sorted)")
    parser.add_argument("--difficult", type=int, choices=(-1, 0, 1), default=-1,
                        help="value for a class present only as difficult objects (default -1, unknown)")
    parser.add_argument("--skip-malformed", action="store_true",
                        help="skip unparsable XML files with a warning instead of stopping")


def import_voc(root, out_csv, split=None, class_names=None, difficult=-1, skip_malformed=False):
    """Imports a folder of VOC XML files.

    Args:
        root: str. The VOC folder (holding `Annotations/`) or a folder of XML files beside their
            images.
        out_csv: str. Output canonical CSV.
        split: str or None. VOC layout only: a split name (`train`, `trainval`, ...) read from
            `ImageSets/Main/<split>.txt`, or the path of such a list. None takes every XML.
        class_names: list[str] or None. Columns, in order; an object of another class is an
            error. None takes the names found in the files, sorted.
        difficult: int. Value for a class present only as difficult objects: -1, 0 or 1.
        skip_malformed: bool. Skip an XML file that cannot be parsed, with a warning, instead
            of stopping with an error naming it.

    Returns:
        LabelTable. The written table.
    """
    image_paths, class_names, labels = voc_labels(root, split, class_names, difficult, skip_malformed)
    names = paths_relative_to(out_csv, image_paths)
    return write_imported(out_csv, names, class_names, labels, root)


def voc_labels(root, split=None, class_names=None, difficult=-1, skip_malformed=False):
    """Reads VOC labels without writing anything; arguments as in `import_voc`.

    Returns:
        Tuple `(image_paths, class_names, labels)`: list[str] image paths (under `root`),
        list[str], int32 np.ndarray [images, classes].
    """
    if difficult not in (-1, 0, 1):
        raise ValueError(f"difficult must be one of [-1, 0, 1]. Received: difficult={difficult!r}")
    xml_paths, image_folder = _xml_files(root, split)
    records = []  # (image path, {class name: True if any non-difficult object})
    for xml_path in tqdm(xml_paths, desc="VOC XML", unit="file", mininterval=0.5):
        try:
            filename, objects = read_voc_xml(xml_path)
        except LabelFileError as e:
            if not skip_malformed:
                raise
            warnings.warn(f"skipped: {e}", stacklevel=2)
            continue
        folder = image_folder if image_folder is not None else os.path.dirname(xml_path)
        records.append((os.path.join(folder, filename), xml_path, objects))

    found = sorted({name for _, _, objects in records for name in objects})
    if class_names is None:
        class_names = found
    column_of = {name: j for j, name in enumerate(class_names)}
    labels = np.zeros((len(records), len(class_names)), np.int32)
    for i, (_, xml_path, objects) in enumerate(records):
        for name, any_clear in objects.items():
            if name not in column_of:
                raise LabelFileError(
                    f"{xml_path}: object class {name!r} is not one of the given class_names {list(class_names)}")
            labels[i, column_of[name]] = 1 if any_clear else difficult
    return [path for path, _, _ in records], list(class_names), labels


def read_voc_xml(xml_path):
    """Reads one VOC annotation.

    Args:
        xml_path: str. The XML file.

    Returns:
        Tuple `(filename, objects)`: the `<filename>` text and a dict from class name to True
        when at least one object of that class is not difficult.
    """
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as e:
        line, column = e.position
        raise LabelFileError(f"{xml_path}:{line}: malformed XML ({e.msg.split(':')[0]}, column {column})") from None
    if root.tag != "annotation":
        raise LabelFileError(f"{xml_path}:1: expected an <annotation> root element, found <{root.tag}>")
    filename = (root.findtext("filename") or "").strip()
    if not filename:
        raise LabelFileError(f"{xml_path}: no <filename> element naming the image")
    objects = {}
    for k, obj in enumerate(root.findall("object")):  # direct children: <part> names are not classes
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise LabelFileError(f"{xml_path}: <object> number {k + 1} has no <name>")
        is_difficult = (obj.findtext("difficult") or "0").strip() not in ("0", "")
        objects[name] = objects.get(name, False) or not is_difficult
    return filename, objects


def _xml_files(root, split):
    """The XML files to read and the image folder (None: beside each XML)."""
    if not os.path.isdir(root):
        raise LabelFileError(f"{root}: VOC folder not found")
    annotations = os.path.join(root, "Annotations")
    if not os.path.isdir(annotations):
        if split is not None:
            raise LabelFileError(f"{root}: a split needs the VOC layout (Annotations/, ImageSets/Main/)")
        xml_paths = sorted(glob.glob(os.path.join(root, "*.xml")))
        if not xml_paths:
            raise LabelFileError(f"{root}: no Annotations/ folder and no *.xml files")
        return xml_paths, None
    images = os.path.join(root, "JPEGImages")
    if split is None:
        return sorted(glob.glob(os.path.join(annotations, "*.xml"))), images
    list_path = split if os.path.isfile(split) else os.path.join(root, "ImageSets", "Main", f"{split}.txt")
    if not os.path.isfile(list_path):
        raise LabelFileError(f"{list_path}: split list not found (expected one image id per line)")
    xml_paths = []
    with open(list_path, encoding="utf-8") as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue
            xml_path = os.path.join(annotations, text.split()[0] + ".xml")
            if not os.path.isfile(xml_path):
                raise LabelFileError(f"{list_path}:{line}: no annotation {xml_path}")
            xml_paths.append(xml_path)
    return xml_paths, images
