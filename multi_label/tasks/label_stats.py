"""mode=stats: label counts, labels per image and co-occurrence of the configured label files."""

import os

from dataset.run_splits import SPLIT_KEYS, split_path
from multi_label.tasks.settings import split_settings
from utils.run_folder import run_folders


def run_stats(config):
    """Writes label statistics (JSON and PNG) of every configured split to models/<run_name>/stats/<split>/."""
    from dataset.stats import label_statistics, unknown_summary

    out = os.path.join(run_folders(config.run_name)[0], "stats")
    splits = split_settings(config)
    for key in SPLIT_KEYS:
        path = split_path(splits, key)
        if path:
            folder = os.path.join(out, key.replace("_labels", ""))
            stats = label_statistics(path, folder, class_names=config.class_names)
            print(f"{key}: {stats['images']} images, {stats['labels_per_image']['mean']:.2f} labels per image; "
                  f"figures in {folder}")
            print(f"  {unknown_summary(stats)}")
