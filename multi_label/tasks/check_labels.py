"""mode=check: reads every image of the configured label files and lists the broken rows, before a night of training."""

from dataset.run_splits import SPLIT_KEYS, split_path
from multi_label.tasks.settings import split_settings


def run_check(config):
    """Checks every configured label file and its images; returns the exit status, 1 when a row is faulty, else 0.

    Each file gets `<stem>.clean.csv`, `<stem>.check.json` and `<stem>.check.txt` beside it; the
    original is never modified.
    """
    from dataset.check import check_label_file

    splits = split_settings(config)
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
