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

from dataset.arguments import run_tool
from dataset.importers import IMPORTERS, importer_module, load_importer


def build_parser():
    """One subcommand per format of `IMPORTERS`, with the options its module adds."""
    parser = argparse.ArgumentParser(prog="python -m dataset.importers.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="format", required=True, metavar="{" + ",".join(IMPORTERS) + "}")
    for name in IMPORTERS:
        module = importer_module(name)
        sub = commands.add_parser(name, help=module.HELP, description=f"Import {module.HELP} to the canonical CSV.")
        module.add_arguments(sub)
        sub.add_argument("-o", "--output", required=True, help="output canonical CSV")
    return parser


def main(argv=None):
    args = vars(build_parser().parse_args(argv))
    import_format, source, output = args.pop("format"), args.pop("source"), args.pop("output")
    return run_tool(lambda: load_importer(import_format)(source, output, **args))[1]


if __name__ == "__main__":
    sys.exit(main())
