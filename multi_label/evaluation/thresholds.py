"""Post-hoc calibration fitted on validation data: per-class F1 thresholds and temperature scaling.

Thresholds are saved as JSON keyed by class name, so they stay attached to the right class
whatever order a later label list uses.
"""

import json
import math

import numpy as np
import scipy.optimize

from multi_label.evaluation.class_rankings import UNKNOWN, check_inputs, class_rankings
from utils.atomic import write_text

DEFAULT_THRESHOLD = 0.5  # for classes with no valid positive to fit on
TEMPERATURE_RANGE = (1e-2, 1e2)  # bracket of the temperature search


def fit_thresholds(targets, scores):
    """Per-class thresholds that maximise F1 on validation data, by exact search.

    Every distinct valid score of a class is a candidate, with prediction `score >= threshold`;
    the best F1 can only be reached at a positive's score, so those are the ones compared. The
    threshold returned is the midpoint between the winning score and the next lower valid score
    of the class (the winning score itself when there is none), so it selects the same
    validation entries while leaving a margin on both sides. Among equal F1 the highest
    threshold wins (fewest predicted labels). Classes with no valid positive get 0.5.

    Args:
        targets: array-like. [N, C] with values in {1, 0, -1}; -1 entries are left out.
        scores: array-like. Float [N, C], the scores the thresholds will be applied to.

    Returns:
        np.ndarray. Float [C].
    """
    targets, scores = check_inputs(targets, scores)
    thresholds = np.full(scores.shape[1], DEFAULT_THRESHOLD)
    for c, ranks in enumerate(class_rankings(targets, scores)):
        if not len(ranks.score):
            continue
        f1 = 2 * ranks.tp / (len(ranks.score) + ranks.tp + ranks.fp)
        best = np.argmax(f1)  # the first maximum: positives run from the highest score down
        score, below = ranks.score[best], ranks.next_score[best]
        midpoint = score / 2 + below / 2  # halves first: no overflow for huge logits
        # Adjacent floats can round the midpoint onto `below`, which would then be selected.
        thresholds[c] = midpoint if midpoint > below else score
    return thresholds


def save_thresholds(path, class_names, thresholds):
    """Writes per-class thresholds as JSON {"thresholds": {name: value}}, atomically.

    Args:
        path: str. The JSON file; written to a temporary file beside it, then renamed.
        class_names: list[str]. One unique name per class.
        thresholds: array-like. Float [C], finite.
    """
    class_names = _unique_names(class_names)
    values = np.asarray(thresholds, dtype=np.float64)
    if values.shape != (len(class_names),):
        raise ValueError(
            f"thresholds must hold one value per class ({len(class_names)}). Received shape {values.shape}"
        )
    if not np.isfinite(values).all():
        bad = [class_names[i] for i in np.flatnonzero(~np.isfinite(values))[:5]]
        raise ValueError(f"thresholds must be finite to be saved. Received non-finite values for {bad}")
    document = {"thresholds": dict(zip(class_names, values.tolist()))}
    write_text(path, json.dumps(document, indent=2) + "\n")


def load_thresholds(path, class_names):
    """Reads thresholds saved by `save_thresholds`, in the order of `class_names`.

    Args:
        path: str. The JSON file.
        class_names: list[str]. The classes of the model; the file must name exactly these.

    Returns:
        np.ndarray. Float [C].
    """
    class_names = _unique_names(class_names)
    with open(path, encoding="utf-8") as f:
        try:
            saved = json.load(f)["thresholds"]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f"{path}: not a thresholds file written by save_thresholds ({error!r})") from None
    missing = [name for name in class_names if name not in saved]
    extra = [name for name in saved if name not in set(class_names)]
    if missing or extra:
        raise ValueError(
            f"{path}: class names differ from the model's. "
            f"Missing from the file: {missing[:10]}; not in the model: {extra[:10]}"
        )
    values = [saved[name] for name in class_names]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        raise ValueError(f"{path}: every threshold must be a finite number")
    return np.asarray(values, dtype=np.float64)


def _unique_names(class_names):
    names = [str(name) for name in class_names]
    if len(set(names)) != len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise ValueError(f"class_names must be unique. Repeated: {repeated[:10]}")
    return names


def _mean_bce(labels, logits, temperature):
    """Mean binary cross-entropy of sigmoid(logits / temperature), computed stably."""
    z = logits / temperature
    return float(np.mean(np.logaddexp(0.0, z) - labels * z))


def fit_temperature(targets, logits):
    """The temperature T > 0 minimising the mean BCE of sigmoid(logits / T) on valid entries.

    BCE is convex in 1 / T, hence unimodal in log T, so SciPy's bounded scalar search (Brent's
    method) on log T over TEMPERATURE_RANGE finds the optimum (to a relative 1e-8); a result at an
    end of the range means the optimum lies beyond it. With no valid entry, T = 1.

    Args:
        targets: array-like. [N, C] with values in {1, 0, -1}; -1 entries are left out.
        logits: array-like. Float [N, C], validation logits (before the sigmoid).

    Returns:
        float.
    """
    targets, logits = check_inputs(targets, logits)
    valid = targets != UNKNOWN
    labels = (targets[valid] == 1).astype(np.float64)
    logits = logits[valid].astype(np.float64)
    if labels.size == 0:
        return 1.0
    low, high = (math.log(t) for t in TEMPERATURE_RANGE)
    result = scipy.optimize.minimize_scalar(lambda log_t: _mean_bce(labels, logits, math.exp(log_t)),
                                            bounds=(low, high), method="bounded", options={"xatol": 1e-8})
    return math.exp(result.x)


def apply_temperature(logits, temperature):
    """Scales logits by 1 / temperature; apply the sigmoid afterwards as usual.

    Args:
        logits: array-like. Float [N, C].
        temperature: float. T > 0, e.g. from `fit_temperature`.

    Returns:
        np.ndarray. logits / temperature, same shape.
    """
    if not (isinstance(temperature, (int, float, np.floating)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0. Received: temperature={temperature!r}")
    return np.asarray(logits) / temperature
