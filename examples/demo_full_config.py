"""The demo's 10-minute recipe, loaded with config=: test mAP 0.996 where the default gives 0.98 in 3 minutes.

    python run.py config=examples/demo_full_config.py

30,000 demo images in their own folder (the default run's data/demo holds 12,000), the ResNet-18
at half width with global max pooling, batch 64, Adam at 2e-3 after half an epoch of warmup, 8
epochs: what `python run.py` trained before its defaults were cut to fit 3 minutes on an
ordinary CPU. About 10 minutes on 2 cores (BENCHMARKS.md, "The demo on 2 AVX2 cores").
"""

demo_images = 30000
demo_data_dir = "data/demo_full"
train_labels = "data/demo_full/train.csv"
val_labels = "data/demo_full/val.csv"
test_labels = "data/demo_full/test.csv"
run_name = "demo_full"
backbone_width = 0.5
pooling = "max"
batch_size = 64
lr = 2e-3
warmup_epochs = 0.5
epochs = 8
