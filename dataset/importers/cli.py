"""Convert other label formats to the canonical label CSV.

    python -m dataset.importers.cli coco  annotations/instances_train2017.json -o train.csv --image-prefix train2017
    python -m dataset.importers.cli voc   VOCdevkit/VOC2012 -o voc_train.csv --split train
    python -m dataset.importers.cli names train_v2.csv -o planet.csv --image-suffix .jpg --image-root train-jpg
    python -m dataset.importers.cli text  train_list.txt -o train.csv --classes cat,dog,car

Image paths in the output are relative to the output file's folder. Run
`python -m dataset.check` on the result before training.
"""

import argparse
import sys

from dataset.importers.coco import CROWD_MODES, import_coco
from dataset.importers.names_csv import import_names_csv
from dataset.importers.text import import_text
from dataset.importers.voc import import_voc
from dataset.labels import LabelFileError


def class_list(value):
    """`a,b,c` or `@file` (one name per line) to a list of class names."""
    if value.startswith("@"):
        with open(value[1:], encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
    else:
        names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"no class names in {value!r}")
    return names


def _add_coco(parser):
    parser.add_argument("source", help="COCO instances JSON")
    parser.add_argument("--image-prefix", default=None,
                        help="folder holding the images, joined to each file_name (default: file_name as is)")
    parser.add_argument("--crowd", choices=CROWD_MODES, default="positive",
                        help="iscrowd annotations: class present (default), ignored, or -1 when the class "
                             "has no other instance in the image")
    parser.add_argument("--drop-empty", action="store_true", help="leave out images with no annotation")


def _run_coco(args):
    import_coco(args.source, args.output, args.image_prefix, args.crowd, args.drop_empty)


def _add_voc(parser):
    parser.add_argument("source", help="VOC folder (with Annotations/) or a folder of XML files beside their images")
    parser.add_argument("--split", default=None,
                        help="VOC layout: split name in ImageSets/Main (train, val, trainval) or a list file")
    parser.add_argument("--classes", type=class_list, default=None,
                        help="class names a,b,c or @file, in column order (default: found in the files, sorted)")
    parser.add_argument("--difficult", type=int, choices=(-1, 0, 1), default=-1,
                        help="value for a class present only as difficult objects (default -1, unknown)")
    parser.add_argument("--skip-malformed", action="store_true",
                        help="skip unparsable XML files with a warning instead of stopping")


def _run_voc(args):
    import_voc(args.source, args.output, args.split, args.classes, args.difficult, args.skip_malformed)


def _add_names(parser):
    parser.add_argument("source", help="CSV with a header, an image column and a column of label names")
    parser.add_argument("--delimiter", default=" ", help="separator between label names in a cell (default: space)")
    parser.add_argument("--classes", type=class_list, default=None,
                        help="class names a,b,c or @file, in column order (default: found in the file, sorted)")
    parser.add_argument("--image-root", default=None, help="folder the image names are relative to "
                                                           "(default: the source file's folder)")
    parser.add_argument("--image-suffix", default="", help="appended to each image name, e.g. .jpg")
    parser.add_argument("--image-column", default=None, help="header of the image column (default: first)")
    parser.add_argument("--labels-column", default=None, help="header of the labels column (default: second)")


def _run_names(args):
    import_names_csv(args.source, args.output, args.delimiter, args.classes, args.image_root,
                     args.image_suffix, args.image_column, args.labels_column)


def _add_text(parser):
    parser.add_argument("source", help="text file: 'path v1 ... vC' per line")
    parser.add_argument("--classes", type=class_list, required=True, help="class names a,b,c or @file, in column order")
    parser.add_argument("--image-root", default=None, help="folder the image paths are relative to "
                                                           "(default: the source file's folder)")


def _run_text(args):
    import_text(args.source, args.output, args.classes, args.image_root)


# Subcommand -> (help line, adds its arguments, runs it).
SUBCOMMANDS = {
    "coco": ("COCO instances JSON (instances_train2017.json style)", _add_coco, _run_coco),
    "voc": ("Pascal VOC XML files (VOC layout, or XML beside each image)", _add_voc, _run_voc),
    "names": ("CSV of image names and delimited label names (Kaggle/Planet style)", _add_names, _run_names),
    "text": ("the original project's 'path v1 ... vC' text file", _add_text, _run_text),
}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dataset.importers.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="format", required=True, metavar="{" + ",".join(SUBCOMMANDS) + "}")
    for name, (help_line, add_arguments, _) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=help_line, description=f"Import {help_line} to the canonical CSV.")
        add_arguments(sub)
        sub.add_argument("-o", "--output", required=True, help="output canonical CSV")
    args = parser.parse_args(argv)
    try:
        SUBCOMMANDS[args.format][2](args)
    except (LabelFileError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
