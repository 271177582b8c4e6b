"""The label files checked for errors, pooled into one table whose every row knows its file and line."""

import dataclasses

import numpy as np

from dataset.labels import LabelFileError
from utils.config import ConfigError


@dataclasses.dataclass
class LabelPool:
    """The rows of several label files with the same classes, in file order.

    Args:
        tables: list[LabelTable]. The label files pooled.
        images: list[str]. Resolved image paths, one per row.
        names: list[str]. Image paths as their label file writes them.
        labels: np.ndarray. int32 [rows, classes] of 1 / 0 / -1.
        table_of_row: np.ndarray. int [rows]: the index in `tables` of each row's file.
        row_in_table: np.ndarray. int [rows]: the row's index in its file's table.
    """

    tables: list
    images: list
    names: list
    labels: np.ndarray
    table_of_row: np.ndarray
    row_in_table: np.ndarray

    @property
    def class_names(self):
        return self.tables[0].class_names

    def source(self, row):
        """The label file of row `row`."""
        return self.tables[self.table_of_row[row]].source

    def __len__(self):
        return len(self.images)


def pool_tables(tables):
    """Pools label tables (train, then val) into one LabelPool.

    Args:
        tables: list[LabelTable]. At least one; all with the same classes in the same order.
    """
    first = tables[0]
    for table in tables[1:]:
        if table.class_names != first.class_names:
            raise LabelFileError(f"{table.source}: classes {table.class_names} differ from {first.source}'s "
                                 f"{first.class_names}; the label files checked together must name the same classes")
    return LabelPool(
        tables=list(tables),
        images=[image for table in tables for image in table.images],
        names=[name for table in tables for name in table.names],
        labels=np.concatenate([table.labels for table in tables]).astype(np.int32),
        table_of_row=np.concatenate([np.full(len(table), t) for t, table in enumerate(tables)]),
        row_in_table=np.concatenate([np.arange(len(table)) for table in tables]),
    )


def check_pool(pool, folds, batch_size):
    """Stops with one line when the pooled labels cannot give `folds` folds to train and rank.

    Args:
        pool: LabelPool. The labels checked.
        folds: int. K, label_error_folds.
        batch_size: int. Each fold trains on the other K - 1 folds, which must fill a batch.
    """
    files = " and ".join(table.source for table in pool.tables)
    known = (pool.labels != -1).sum(axis=0)
    empty = [name for name, count in zip(pool.class_names, known) if count == 0]
    if empty:
        raise LabelFileError(f"{files}: class {empty[0]!r} has no known (1 or 0) label in any row; expected at least "
                             "one to judge the others by (or leave the class out of the files)")
    smallest_training = len(pool) - -(-len(pool) // folds)  # the other folds of the largest one
    if len(pool) < folds or smallest_training < batch_size:
        raise ConfigError(f"label_error_folds={folds} with {len(pool)} images in {files}: each fold trains on the "
                          f"other {folds - 1} ({smallest_training} images), fewer than batch_size={batch_size}; "
                          "lower label_error_folds or batch_size")
