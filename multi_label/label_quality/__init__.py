"""Finding label errors: out-of-fold probabilities of every image, ranked by confident learning (cleanlab).

`pool` pools the label files checked; `folds` splits them into K stratified folds and keeps the
plan; `out_of_fold` writes each fold's label files and keeps its held-out probabilities;
`ranking` flags and scores every known (1 or 0) label; `outputs` writes the ranked CSV, the image
grid and the corrected label files. mode=find_label_errors (multi_label/tasks/find_label_errors.py)
wires them around the train task.
"""
