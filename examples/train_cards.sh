#!/usr/bin/env bash
# Train on a folder of Pascal VOC photos (images with their XML annotations beside them, in train/
# and test/ subfolders), e.g. a playing-card set: import, hold out a validation part, check, train, test.
#
#   bash examples/train_cards.sh path/to/cards                      # files
#   bash examples/train_cards.sh path/to/cards data_format=tfrecord # the same from TFRecord shards
#   bash examples/train_cards.sh path/to/cards head=ml_gcn run_name=cards_gcn
#
# Settings after the folder override the ones below (key=value, as for run.py).
set -euo pipefail
source="${1:?usage: bash examples/train_cards.sh path/to/voc_folder [key=value ...]}"
shift
data=data/cards
mkdir -p "$data"
if [ ! -f "$data/train.csv" ]; then
    python run.py mode=import import_format=voc import_source="$source/train" import_output="$data/train.csv" \
        import_val_fraction=0.2
fi
if [ ! -f "$data/test.csv" ]; then
    python run.py mode=import import_format=voc import_source="$source/test" import_output="$data/test.csv"
fi
# every image read once; faulty rows are listed and left out of the .clean.csv files trained on
python run.py mode=check train_labels="$data/train.fit.csv" val_labels="$data/train.val.csv" \
    test_labels="$data/test.csv" || echo "Faulty rows are left out: training on the .clean.csv files"
python run.py train_labels="$data/train.fit.clean.csv" val_labels="$data/train.val.clean.csv" \
    test_labels="$data/test.clean.csv" image_size=160 batch_size=32 epochs=40 lr=1e-3 warmup_epochs=2 \
    flip=horizontal color_jitter=0.2 run_name=cards "$@"
