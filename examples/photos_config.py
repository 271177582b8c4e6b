"""A starting point for your own photos (a few hundred to a few thousand), loaded with config=.

    python run.py config=examples/photos_config.py train_labels=data/mine/train.csv \
        val_labels=data/mine/val.csv test_labels=data/mine/test.csv run_name=mine

Any setting here can still be overridden after it on the command line (key=value). Offline,
nothing can be downloaded: add backbone_weights="none" to train from random weights (expect far
lower accuracy: this recipe is made for a pretrained encoder).
"""

# A pretrained encoder moves the result more than any head or loss. ResNet-50 with torchvision's
# ImageNet weights (converted once; torch is needed for that step only). Alternatives:
# backbone="hub:dinov2_small" with backbone_weights="preset" (self-supervised ViT-S/14, strong on
# few photos) or "hub:siglip_base_patch16_224" (image-text pretraining, 224 px fixed).
backbone = "resnet50"
backbone_width = 1.0
backbone_weights = "torchvision"
# The pretrained backbone learns 10x slower than the new head, after one epoch of the head alone.
backbone_lr_multiplier = 0.1
freeze_epochs = 1
# Multi-label objects are often small: 448 px as in the published COCO results (ASL, ML-Decoder).
image_size = 448
# Random resized crop that keeps most of the image (a crop can cut a labelled object out), flips,
# and RandAugment's two operations at magnitude 9.
crop_scale = (0.5, 1.0)
flip = "horizontal"
randaugment_ops = 2
randaugment_magnitude = 9.0
# Asymmetric loss (Ridnik 2021): many easy negatives per image weigh little.
loss = "asl"
asl_gamma_neg = 4.0
asl_gamma_pos = 0.0
asl_clip = 0.05
# AdamW with cosine decay after a one-epoch warmup; decoupled weight decay instead of L2.
optimizer = "adamw"
lr = 3e-4
weight_decay = 0.01
l2_kernels = 0.0
lr_schedule = "cosine"
warmup_epochs = 1.0
epochs = 30
batch_size = 16
# An average of the weights over the last ~100 steps: steadier validation on small sets.
ema_decay = 0.99
# Per-class thresholds fitted on the validation split (F1), used by test, predict and convert.
class_thresholds = "fitted"
pooling = "avg"
