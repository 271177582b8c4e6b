"""Which known labels look wrong: confident learning on out-of-fold probabilities, one class at a time.

Each class is a binary task on the rows whose label for it is known (1 or 0); -1 entries are
never judged. cleanlab (Northcutt, Jiang and Chuang, "Confident Learning: Estimating Uncertainty
in Dataset Labels", JAIR 2021) estimates from the probabilities how many labels of each value are
wrong (`cleanlab.filter.find_label_issues`, filter_by="prune_by_noise_rate") and flags that many,
those of lowest margin; each entry's score is its self-confidence, the out-of-fold probability of
the label it has (`cleanlab.rank.get_label_quality_scores`, lower = more suspect). This is what
cleanlab's own multi-label code does per class (cleanlab/multilabel_classification/filter.py,
`find_multilabel_issues_per_class`: a one-vs-rest `stack_complement` of each column), restricted
here to the known entries. An image's score aggregates its classes' scores as cleanlab's
multi-label `get_label_quality_scores` does (exponential moving average, alpha 0.8), unknown
entries counting as sure (1).

Flagged is not the same as listed. Confident learning counts an entry labelled 0 as confidently
present only above the class's threshold, the mean probability over the images labelled 1; for a
class nearly every image has (a background, "person" in street photos, red cells in a blood smear)
that threshold is near 1 (about 0.995 at 96 % prevalence), so a missing label predicted at 0.96-0.99
is never counted and never flagged, although its score (0.01-0.04) is lower than most flagged
entries'. `suspect_entries` therefore lists every flagged entry and every entry the folds' models
contradict (score below SUSPECT_SCORE, even odds for the label it has), all ranked by score, with
the flag marked: such a missing label ranks at the top of the list whatever the flag says. The
flags, and so the corrected copies, stay confident learning's estimate.
"""

import dataclasses
import warnings

import numpy as np
from cleanlab.filter import find_label_issues as cleanlab_find_label_issues
from cleanlab.internal.multilabel_scorer import exponential_moving_average
from cleanlab.rank import get_label_quality_scores

FILTER_BY = "prune_by_noise_rate"  # cleanlab's default Confident Learning method
SCORE_METHOD = "self_confidence"  # the probability of the given label
IMAGE_SCORE_ALPHA = 0.8  # cleanlab's default for multi-label image scores
DIRECTIONS = {0: "likely missing", 1: "likely spurious"}  # by the current label: a 0 that looks 1, a 1 that looks 0
SUSPECT_SCORE = 0.5  # listed even unflagged: the out-of-fold probability of the entry's label is below even odds


@dataclasses.dataclass(frozen=True)
class LabelIssues:
    """The verdict on every label entry.

    Args:
        flagged: np.ndarray. bool [N, C]: cleanlab flags the entry as a label error.
        scores: np.ndarray. float [N, C] in [0, 1], lower = more suspect; NaN for -1 entries and
            images without a prediction.
        image_scores: np.ndarray. float [N]: each image's aggregate score, lower = more suspect.
        unflagged_classes: list[int]. Classes whose known labels all have one value: scored, not
            flagged (confident learning needs both values to estimate the noise rates).
    """

    flagged: np.ndarray
    scores: np.ndarray
    image_scores: np.ndarray
    unflagged_classes: list


def find_label_issues(labels, probabilities):
    """Flags and scores the known entries of a label matrix by out-of-fold probabilities.

    Args:
        labels: np.ndarray. [N, C] of 1 / 0 / -1.
        probabilities: np.ndarray. [N, C] out-of-fold probabilities of each class; NaN rows (an
            image that could not be read) are left out.

    Returns:
        LabelIssues.
    """
    labels = np.asarray(labels)
    probabilities = np.clip(np.asarray(probabilities, np.float64), 0.0, 1.0)
    flagged = np.zeros(labels.shape, bool)
    scores = np.full(labels.shape, np.nan)
    unflagged = []
    for c in range(labels.shape[1]):
        known, given, binary = class_task(labels, probabilities, c)
        if not known.any():
            continue
        scores[known, c] = get_label_quality_scores(given, binary, method=SCORE_METHOD)
        if len(np.unique(given)) < 2:
            unflagged.append(c)
            continue
        with warnings.catch_warnings():  # "may not flag all label issues in class ...": rare classes, said below
            warnings.simplefilter("ignore", UserWarning)
            flagged[known, c] = cleanlab_find_label_issues(given, binary, filter_by=FILTER_BY, n_jobs=1)
    image_scores = exponential_moving_average(np.where(np.isnan(scores), 1.0, scores), alpha=IMAGE_SCORE_ALPHA)
    return LabelIssues(flagged, scores, np.asarray(image_scores, np.float64), unflagged)


def class_task(labels, probabilities, c):
    """Class `c` as cleanlab's yes/no task: (known rows, their labels 0 / 1, [known, 2] probabilities).

    The known rows are those labelled 1 or 0 with a prediction; -1 entries and unread images are left out.
    """
    known = (labels[:, c] != -1) & np.isfinite(probabilities[:, c])
    binary = np.stack([1.0 - probabilities[known, c], probabilities[known, c]], axis=1)
    return known, labels[known, c].astype(int), binary


def ranked_entries(issues, flagged_only=True):
    """(row, class) pairs, most suspect first: by score, then by the image's score.

    Args:
        issues: LabelIssues.
        flagged_only: bool. Only the flagged entries; False: every scored (known) entry.
    """
    return _by_score(issues, issues.flagged if flagged_only else np.isfinite(issues.scores))


def suspect_entries(issues):
    """The entries worth a look, most suspect first: the flagged ones and those with a score below SUSPECT_SCORE.

    See the module docstring: an entry the folds' models contradict is listed even where
    confident learning's per-class threshold leaves it unflagged.

    Args:
        issues: LabelIssues.
    """
    contradicted = np.nan_to_num(issues.scores, nan=1.0) < SUSPECT_SCORE  # NaN: -1 or unread, never judged
    return _by_score(issues, issues.flagged | contradicted)


def _by_score(issues, chosen):
    """The (row, class) pairs where `chosen` [N, C] is True, by score, then image score, row and class."""
    rows, classes = np.nonzero(chosen)
    order = np.lexsort((classes, rows, issues.image_scores[rows], issues.scores[rows, classes]))
    return list(zip(rows[order].tolist(), classes[order].tolist()))
