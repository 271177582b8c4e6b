"""The original project's space-separated label file to the canonical label CSV.

    relative/path.jpg 1 0 -1 ...

one line per image, one value per class; the class names are not in the file and must be given.
"""

from dataset.arguments import class_list
from dataset.importers.canonical_csv import write_imported
from dataset.labels import paths_relative_to, read_labels

HELP = "the original project's 'path v1 ... vC' text file"


def add_arguments(parser):
    """The command-line options of `import_text`, named like its arguments."""
    parser.add_argument("source", help="text file: 'path v1 ... vC' per line")
    parser.add_argument("--classes", dest="class_names", metavar="CLASSES", type=class_list, required=True,
                        help="class names a,b,c or @file, in column order")
    parser.add_argument("--image-root", default=None, help="folder the image paths are relative to "
                                                           "(default: the source file's folder)")


def import_text(path, out_csv, class_names, image_root=None):
    """Imports a text label file.

    Args:
        path: str. The text file (any extension but `.csv`).
        out_csv: str. Output canonical CSV.
        class_names: list[str]. One name per value column, in order.
        image_root: str or None. Folder the image paths are relative to; default the text
            file's folder.

    Returns:
        LabelTable. The written table.
    """
    if path.lower().endswith(".csv"):
        # read_labels would take it for a canonical CSV, which needs no import at all.
        raise ValueError(f"{path}: a .csv is read as the canonical format; the text format needs another extension")
    table = read_labels(path, class_names=class_names, image_root=image_root)
    names = paths_relative_to(out_csv, table.images)
    return write_imported(out_csv, names, table.class_names, table.labels, path)
