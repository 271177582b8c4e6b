"""The page of settings. Edit the defaults here, or override any of them on the command line:

    python run.py epochs=30 lr=3e-4 backbone="resnet50" run_name="cars-r50"
    python run.py config=my_config.py mode=test

Values are Python literals. The comment above a setting says what it does and when to change it;
its type names the values it takes. Settings that contradict each other stop the run before any
work, with one line naming them (utils/rules/ lists those rules).
"""

from dataclasses import dataclass
from typing import Literal, Optional, Union

# Families of choices that some settings depend on. tests/test_registries.py ties each to the
# code: a new backbone, head or format goes into its registry and into its list here.
# Hand-written ResNets: any backbone_width; pre-activation (preact_) variants for deep ones.
ResNet = Literal[
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext18", "resnext50_32x4d", "resnext101_32x8d",
    "preact_resnet18", "preact_resnet34", "preact_resnet50", "preact_resnet101",
]
# Hand-written MixNet (ResNet-18 layout, mixed 3/5/7/9 depthwise convolutions): any backbone_width.
MixNet = Literal["mixnet18"]
# Hand-written EfficientNet-Lite0 (fixed width): ImageNet weights from its pip package, no download.
EfficientNetLite = Literal["efficientnet_lite0"]
# keras.applications models: the ones with published ImageNet weights (backbone_weights).
KerasApplication = Literal["keras_resnet50", "keras_resnet101", "keras_resnet50v2",
                           "keras_resnet101v2", "efficientnetv2_b0", "efficientnetv2_s",
                           "convnext_tiny", "mobilenetv2", "mobilenetv3_small", "mobilenetv3_large"]
# Any keras-hub image encoder preset, "hub:<preset name or folder>" (backbone/hub.py lists the
# families: ResNet, EfficientNet, DINOv2, CLIP, SigLIP, ViT), e.g. "hub:dinov2_small".
HubPreset = str
# Heads that pool the feature map, so they read `pooling`.
PoolingHead = Literal["linear", "groups"]
# Heads that propagate over a label co-occurrence graph, so they read `label_embeddings`.
LabelGraphHead = Literal["ml_gcn", "ssgrl"]
# Heads whose queries read the feature map through transformer decoder layers (decoder_*).
QueryHead = Literal["query2label", "ml_decoder"]
# Losses for missing labels: -1 entries get a term of their own (so no unknown_labels), and
# there is no one-of-K version for head='groups'.
PartialLabelLoss = Literal["hill", "splc", "llr", "epr"]
# What mode=convert can write (see `formats`).
ExportFormat = Literal["keras", "savedmodel", "tflite_float32", "tflite_float16",
                       "tflite_dynamic_int8", "tflite_int8", "onnx"]


@dataclass
class Config:
    # --- what to do -------------------------------------------------------------------------
    # What run.py does. train also tests when test_labels is set; debug prints the layer
    # statistics of one batch (dead or exploding layers); convert exports with a parity report;
    # prune removes the channels of smallest BatchNorm gamma (network slimming: prune_ratio);
    # find_label_errors ranks suspect labels of train_labels and val_labels by K-fold training.
    mode: Literal["train", "test", "predict", "check", "import", "stats", "debug",
                  "convert", "prune", "find_label_errors"] = "train"
    # Names the output folders models/<run_name>/ and logs/<run_name>/; the same name resumes
    # the same run.
    run_name: str = "demo"
    # Allow a new training run where a run with other settings is (moved aside, never deleted).
    overwrite: bool = False
    # Seeds data order, augmentation, initial weights and the demo data.
    seed: int = 42
    # Make CPU runs bit-for-bit repeatable (slower: single-threaded data pipeline).
    deterministic: bool = False

    # --- data -------------------------------------------------------------------------------
    # Training label file: canonical CSV (image,<class>..., values 1/0/-1) or the text format.
    train_labels: str = "data/demo/train.csv"
    # Validation label file, used for the best checkpoint (by mAP); "" to train without it.
    val_labels: str = "data/demo/val.csv"
    # Test label file for mode=test and after training; "" to skip the test.
    test_labels: str = "data/demo/test.csv"
    # Folder that image paths are relative to; None: each label file's own folder.
    image_root: Optional[str] = None
    # Class names, needed only for the text label format (CSV headers name the classes).
    class_names: Optional[list] = None
    # Label files inside this folder that are missing are generated from scikit-learn's digits.
    demo_data_dir: str = "data/demo"
    # Images of the generated demo data, split 70/10/20. 12,000 are built in ~20 s and still
    # enough not to be memorised in 8 epochs (10,000 learnt later and worse: BENCHMARKS.md).
    # The 10-minute recipe (30,000, test mAP 0.996): config=examples/demo_full_config.py
    demo_images: int = 12000
    # Long-tailed demo: the train split draws digit 0 this many times as often as 9, falling off
    # geometrically (val and test stay balanced); 1.0: even. Needs its own demo_data_dir.
    demo_long_tail: float = 1.0
    # Side in pixels that images are resized to (square); 224 or 448 for photos.
    image_size: int = 64
    # tfrecord reads TFRecord shards written on first use, not the image files (network disks).
    data_format: Literal["files", "tfrecord"] = "files"
    # data_format=tfrecord: where the shards go; "": in <label file>.tfrecords/ beside each.
    tfrecord_dir: str = ""
    # Keep decoded, resized images in memory after the first epoch, as uint8 (side^2 * 3 bytes an
    # image: 12 KB at 64 px, 150 KB at 224, 600 KB at 448).
    cache_images: bool = True
    # Share of the memory available at the start that the image cache may take; a run whose cache
    # would need more reads its images from disk every epoch instead, and says so in one line.
    cache_budget: float = 0.5
    # Images in the shuffle buffer.
    shuffle_buffer: int = 4096

    # --- data tools (mode=check, mode=import) -------------------------------------------------
    # check: also leave CMYK JPEGs and 16-bit PNGs out of the clean file (TensorFlow decodes
    # them right, other loaders may not); False keeps them, reported as notes.
    check_strict: bool = True
    # Annotation format to convert: coco (instances JSON), voc (Annotations/*.xml or XML beside
    # the images), names (image,label names CSV), text (path v1 ... vC) or openimages (Open
    # Images' ImageID,Source,LabelName,Confidence CSV, written in the sparse label format).
    import_format: Literal["coco", "voc", "names", "text", "openimages"] = "voc"
    # The annotation file (coco, names, text, openimages) or dataset folder (voc) to import.
    import_source: str = ""
    # The label file to write, canonical CSV or sparse (openimages: name it *.sparse.csv); never
    # overwritten unless overwrite=True.
    import_output: str = ""
    # Also split the imported train.csv into train.fit.csv and train.val.csv, this share held
    # out (stratified per class, from `seed`); 0: no split.
    import_val_fraction: float = 0.0
    # Importer options, e.g. {"split": "train"} (voc), {"crowd": "ignore"} (coco),
    # {"class_descriptions": "oidv6-class-descriptions.csv"} (openimages); see README.
    import_options: Optional[dict] = None

    # --- augmentation (training only; evaluation only resizes, after center_crop) -------------
    # Random flips; keep "none" for digits and text, whose meaning flips change.
    flip: Literal["none", "horizontal", "vertical", "both"] = "none"
    # Random resized crop: (min, max) fraction of the image area kept, e.g. (0.5, 1.0);
    # None: off (a crop can cut a labelled object out of the image).
    crop_scale: Optional[tuple] = None
    # Random resized crop: (min, max) aspect ratio of the crop.
    crop_ratio: tuple = (0.75, 1.33)
    # Strength of random brightness, contrast and saturation changes, e.g. 0.2; 0: off.
    color_jitter: float = 0.0
    # Random hue shift up to this fraction of the colour circle either way, e.g. 0.05; 0: off.
    hue_jitter: float = 0.0
    # Random rotation up to this many degrees either way (edges reflected), e.g. 10; 0: off.
    rotation: float = 0.0
    # Standard deviation of added Gaussian noise in pixel units (0-255), e.g. 5; 0: off.
    gaussian_noise: float = 0.0
    # Fraction of pixels set to black or white, e.g. 0.01; 0: off.
    salt_and_pepper: float = 0.0
    # Random erasing: each square covers this share of the image (mean colour), e.g. 0.1; 0: off.
    cutout: float = 0.0
    # Random erasing: squares erased per image.
    cutout_count: int = 1
    # Multi-scale crop (SSGRL): a random square crop whose side is a random entry of this list
    # times the shorter side, resized to image_size, e.g. (1.0, 0.875, 0.75, 0.66, 0.5);
    # None: off.
    multiscale_crop: Optional[tuple] = None
    # MixUp of each training batch with itself reversed, weight ~ Beta(alpha, alpha), e.g. 0.2;
    # targets mixed alike, unknown (-1) where either image's label is; 0: off. Not with
    # head='groups' (a group's label is one class index, which cannot be mixed).
    mixup_alpha: float = 0.0
    # CutMix (a box of the reversed batch pasted in), box area ~ Beta(alpha, alpha), e.g. 1.0;
    # targets weighted by area, -1 as for MixUp; with both on, each batch uses one at random;
    # 0: off. Not with head='groups', as for MixUp.
    cutmix_alpha: float = 0.0
    # RandAugment (Cubuk 2020): operations per image, drawn from the paper's 14 (e.g. 2); 0: off.
    randaugment_ops: int = 0
    # RandAugment: strength of each operation on the paper's 0-10 scale (10: rotate 30 degrees,
    # shear 0.3, translate 0.45 of the side, enhance factors 1 +- 0.9).
    randaugment_magnitude: float = 9.0
    # Evaluation: keep this central fraction of each side before resizing (e.g. 0.875 as in
    # ImageNet evaluation); the exported SavedModel crops alike; 1.0: off.
    center_crop: float = 1.0
    # Repeat-factor sampling (LVIS) for rare classes: each epoch repeats an image
    # sqrt(t / frequency of its rarest class) times (stochastic rounding), e.g. 0.05; 0: off.
    # Not with head='groups' (it counts multi-label positives).
    repeat_factor_threshold: float = 0.0

    # --- model ------------------------------------------------------------------------------
    # Feature extractor. The hand-written ResNets and MixNet take any backbone_width; the
    # keras.applications models and efficientnet_lite0 (4.7M parameters, no download: its
    # weights come with pip) have ImageNet weights (backbone_weights="imagenet"); "hub:<preset>"
    # is a pretrained keras-hub encoder (downloaded once; its input size and normalisation
    # apply; load its weights with backbone_weights="preset"), e.g. "hub:dinov2_small".
    backbone: Union[Literal[ResNet, MixNet, EfficientNetLite, KerasApplication],
                    HubPreset] = "resnet18"
    # Channel width multiplier of the hand-written ResNets and MixNet (and the MobileNets'
    # alpha): 1.0 is the published network; 0.25 (a sixteenth of its compute, 1.7x the images/s
    # of 0.5 on 2 AVX2 cores) trains the demo in 3 minutes; 0.5 or 1.0 for your own photos.
    backbone_width: float = 0.25
    # Initial backbone weights: "none", "imagenet" (keras.applications backbones, downloaded
    # once; efficientnet_lite0's come with its pip package, requirements.txt), "torchvision"
    # (torchvision's ImageNet weights of resnet18/34/50/101/152, resnext50_32x4d and
    # resnext101_32x8d at backbone_width=1.0, converted once; torch needed for that one
    # conversion only), "preset" (a keras-hub preset's own weights), or a path to a
    # .keras / .weights.h5 file of a model with this backbone (its head too when classes.json
    # beside it names the same classes) or a Keras *_notop.h5 file (keras.applications backbones).
    backbone_weights: str = "none"
    # The channels.json of mode=prune: builds its pruned network (fine-tune it with
    # backbone_weights= the model.keras beside it); "": the unpruned network.
    pruned_channels: str = ""
    # Input normalisation of the hand-written backbones: the backbone's default (ImageNet
    # mean/std; (x - 127) / 128 for efficientnet_lite0), ImageNet mean/std, per-image
    # standardisation, [0, 1] (unit) or centered ((x - 127) / 128). keras.applications models
    # normalise alone.
    normalization: Literal["backbone", "imagenet", "standardize", "unit", "centered"] = "backbone"
    # Classifier head: linear (one sigmoid per class), groups (one softmax per attribute
    # group, see `groups`), csra (class-specific residual attention: small objects), ml_gcn and
    # ssgrl (learn from label co-occurrence: many correlated classes), query2label (a learned
    # query per class, transformer decoder) and ml_decoder (group queries: thousands of classes).
    head: Literal[PoolingHead, "csra", LabelGraphHead, QueryHead] = "linear"
    # Pooling of the feature map before the linear or groups head: avg passes a gradient to
    # every position, so a network from random weights starts reading shapes epochs sooner
    # (the demo: val mAP 0.75 after 2 epochs where max had 0.31); max suits small objects
    # anywhere in the image once features exist (a pretrained encoder); flatten keeps where
    # each feature is (groups of positional attributes, e.g. each character of a licence plate)
    # and fixes the input size; class_token is a keras-hub ViT's pooled token (DINOv2, CLIP,
    # ViT; SigLIP's attention pooling).
    pooling: Literal["avg", "max", "avg+max", "flatten", "class_token"] = "avg"
    # Dropout rate before the classifier.
    dropout: float = 0.0
    # head=groups: {group: number of classes} in label-file column order, e.g.
    # {"colour": 12, "type": 6}; each label is a class index in its group, -1 unknown.
    groups: Optional[dict] = None
    # csra: attention heads; 1, 2, 4, 6 or 8 use the paper's temperatures (1: [1], 2: [1, 99],
    # 4: [1, 2, 4, 99], ...); other counts need csra_temperatures.
    csra_heads: int = 1
    # csra: softmax temperature of each head (99 = max pooling), e.g. [1, 99]; None: the
    # paper's set for csra_heads.
    csra_temperatures: Optional[list] = None
    # csra: weight of the class-specific attention logit added to the average-pooled one.
    csra_lambda: float = 0.1
    # ml_gcn/ssgrl: GloVe-format text file of word vectors for the class names (multi-word
    # names averaged); "": learned embeddings.
    label_embeddings: str = ""
    # ml_gcn: width of the hidden graph convolution; ssgrl: rank of the bilinear attention.
    graph_hidden: int = 1024
    # ml_gcn: tau; label pairs with P(j|i) below it get no edge.
    gcn_threshold: float = 0.4
    # ml_gcn: p; share of a class's classifier taken from its graph neighbours.
    gcn_reweight: float = 0.2
    # ssgrl: propagation steps T of the gated graph network.
    ssgrl_steps: int = 3
    # query2label/ml_decoder: transformer decoder layers; None: each paper's count (query2label
    # 2, ml_decoder 1). Each layer more lets the queries read the image again, at its cost.
    decoder_layers: Optional[int] = None
    # query2label/ml_decoder: model width d of queries and tokens (papers: 2048 and 768, for
    # ResNet-101/TResNet on 448 px); 256, as DETR, keeps the head a small share of a CPU step.
    decoder_width: int = 256
    # query2label/ml_decoder: attention heads; decoder_width is a multiple of it (8 as DETR
    # and ML-Decoder: 32 channels per head).
    decoder_heads: int = 8
    # query2label/ml_decoder: hidden width of each layer's feed-forward block (4 x width as
    # Query2Label; ML-Decoder uses 2048).
    decoder_feedforward: int = 1024
    # query2label/ml_decoder: dropout inside the decoder (attention weights and each residual
    # branch), 0.1 in both papers; `dropout` drops whole channels of the feature map before it.
    decoder_dropout: float = 0.1
    # ml_decoder: group queries G, each decoding ceil(classes / G) classes; the decoder's cost
    # depends on G, not on the classes. None: the paper's min(classes, 100).
    ml_decoder_groups: Optional[int] = None

    # --- loss -------------------------------------------------------------------------------
    # Training loss: focal (Lin 2017), ghm (GHM-C, Li 2019) and asl (asymmetric, Ridnik 2021)
    # put less weight on easy examples, which helps with many rare classes; they treat -1 labels
    # per unknown_labels. hill, splc (Zhang 2021), llr (Kim 2022) and epr (Cole 2021) are for
    # labels that may be missing: -1 entries get their own term. head='groups' uses the softmax
    # loss of the same family (bce, focal, ghm, asl only).
    loss: Literal["bce", "focal", "ghm", "asl", PartialLabelLoss] = "bce"
    # Moves targets 1/0 to 1-s/2 and s/2 (0.1 gives 0.95/0.05), for every loss.
    label_smoothing: float = 0.0
    # Weight of the positive term per class: None, a list of C numbers, or "auto"
    # (negatives/positives from the training labels). Not with head='groups'.
    pos_weight: Optional[object] = None
    # Long-tailed labels (sigmoid losses): inverse is pos_weight="auto"; effective_number (Cui
    # 2019) weights each class's positive and negative terms by 1/their effective number.
    class_weighting: Literal["none", "inverse", "effective_number"] = "none"
    # effective_number's beta in [0, 1): 0 weighs all alike, nearer 1 nears 1/count (0.9-0.9999).
    class_weight_beta: float = 0.999
    # focal: focusing exponent; 0 gives BCE.
    focal_gamma: float = 2.0
    # focal: weight of positives (negatives get 1-alpha); < 0 turns the weighting off.
    # head='groups' with loss='focal' has no such weighting: set -1 there.
    focal_alpha: float = 0.25
    # GHM: number of gradient-norm bins on [0, 1].
    ghm_bins: int = 30
    # GHM: moving-average momentum of the bin counts; 0 uses each batch alone.
    ghm_momentum: float = 0.75
    # ASL: focusing exponent for positives.
    asl_gamma_pos: float = 0.0
    # ASL: focusing exponent for negatives.
    asl_gamma_neg: float = 4.0
    # ASL: probability shift for negatives (easy negatives below it give no loss).
    # head='groups' with loss='asl' has no shift: set 0 there.
    asl_clip: float = 0.05
    # bce/focal/ghm/asl: -1 labels are left out, taken as 0 (negative), or left out with each image
    # weighted by its share of known labels (weighted: partial-BCE, Durand 2019).
    unknown_labels: Literal["ignore", "negative", "weighted"] = "ignore"
    # hill: lambda of its -1-label term (lambda - p) p^2 (the paper never changes it).
    hill_lamb: float = 1.5
    # hill: margin subtracted from positives' logits (0.5-1.0 work alike).
    hill_margin: float = 1.0
    # hill: focusing exponent of the positive and the 0-label terms.
    hill_gamma: float = 2.0
    # splc: -1 labels predicted above this probability are trained as positives (0.65 if few miss).
    splc_tau: float = 0.6
    # splc: margin subtracted from positives' logits.
    splc_margin: float = 1.0
    # splc: focusing exponent of its terms.
    splc_gamma: float = 2.0
    # splc: epochs trained before the correction starts (the first epoch finds few missing labels).
    splc_start_epoch: int = 1
    # llr: share of batch x classes rejected (largest -1-label losses), grown by this each epoch.
    llr_rate_per_epoch: float = 0.002
    # epr: expected positives per image (COCO: 2.9); None: train_labels' mean known positives.
    epr_expected_positives: Optional[float] = None

    # --- optimisation -----------------------------------------------------------------------
    # sgd uses momentum and nesterov; radam is rectified Adam (Liu 2020), steadier in the
    # first steps without a warmup; lion uses only the sign of the update (try a 3-10x
    # smaller lr).
    optimizer: Literal["sgd", "adam", "adamw", "radam", "lion"] = "adam"
    # Peak learning rate (after warmup). 4e-3 suits Adam on a small network from random
    # weights (the demo learns sooner than at 2e-3); far less for a pretrained encoder.
    lr: float = 4e-3
    # sgd: momentum.
    momentum: float = 0.9
    # sgd: Nesterov momentum.
    nesterov: bool = True
    # adam/adamw/radam/lion: first-moment decay.
    beta_1: float = 0.9
    # adam/adamw/radam/lion: second-moment decay (lion: update interpolation).
    beta_2: float = 0.999
    # adam/adamw/radam: added to the denominator for stability.
    epsilon: float = 1e-7
    # Decoupled weight decay (AdamW's), applied by the optimizer to all weights; 0: off. The L2
    # terms below (l2_kernels, l2_bn_gamma) are added to the loss instead.
    weight_decay: float = 0.0
    # L2 strength on conv and dense kernels (loss += s * sum(w^2)); 0: off.
    l2_kernels: float = 5e-5
    # L2 strength on BatchNorm gamma (raise it against over-fitting); 0: off.
    l2_bn_gamma: float = 0.0
    # Sparsity training for mode=prune (Liu 2017): loss += s * sum(|gamma|) on the prunable
    # BatchNorms (ResNets, mixnet18): unneeded channels go to 0. 1e-5 for ResNets (on the demo
    # 1e-4 cost 13 mAP points, 1e-5 under 0.4); paper 1e-5-1e-4; 0: off
    slimming_l1: float = 0.0
    # Clip each gradient to this L2 norm; None: off.
    clipnorm: Optional[float] = None
    # The learning rate after warmup: cosine decays to min_lr, step follows the lr_steps
    # table, exponential multiplies by lr_decay_rate per epoch, plateau cuts it when the
    # validation mAP stops improving (needs val_labels).
    lr_schedule: Literal["constant", "cosine", "step", "exponential", "plateau"] = "cosine"
    # Epochs of linear warmup from 0 to lr; shorter than `epochs`.
    warmup_epochs: float = 0.25
    # Warmup length in steps; > 0 overrides warmup_epochs.
    warmup_steps: int = 0
    # cosine: final learning rate; plateau: the lowest one. At most lr.
    min_lr: float = 0.0
    # step: {epoch: multiplier of lr from that epoch on}, e.g. {30: 0.1, 60: 0.01}; only with
    # lr_schedule='step'.
    lr_steps: Optional[dict] = None
    # exponential: lr multiplier per epoch.
    lr_decay_rate: float = 0.9
    # plateau: lr multiplier when val mAP stops improving.
    plateau_factor: float = 0.1
    # plateau: epochs without improvement before the cut.
    plateau_patience: int = 3
    # Keep an exponential moving average of the weights (e.g. 0.999) and validate/save it; 0: off.
    ema_decay: float = 0.0
    # Sum gradients over this many batches per update (a larger effective batch); 1: off.
    gradient_accumulation_steps: int = 1
    # Linear scaling rule (Goyal 2017): lr * effective batch / base_batch_size.
    scale_lr_with_batch: bool = False
    # The batch size that lr is given for when scale_lr_with_batch is on.
    base_batch_size: int = 256
    # Train only the head for this many first epochs (backbone frozen, its BatchNorm in
    # inference mode), then everything; 0: off; epochs or more: the head alone.
    freeze_epochs: int = 0
    # The backbone learns at lr times this (e.g. 0.1 for pretrained weights); the head at lr.
    backbone_lr_multiplier: float = 1.0

    # --- training: epochs, batches, devices ---------------------------------------------------
    # Training epochs.
    epochs: int = 8
    # End the run after this many epochs without a better validation mAP (the best model is kept,
    # and a resumed run counts the epochs before the interruption); 0: off. Needs val_labels.
    early_stopping_patience: int = 0
    # Classifier re-training (Kang 2020) after `epochs`: this many epochs, backbone frozen, images
    # drawn by 1/frequency of their rarest class, own cosine lr; best val mAP kept; 0: off.
    balanced_epochs: int = 0
    # Balanced stage: the head starts again from its initial weights (cRT); False: trains it on.
    balanced_reset_head: bool = True
    # Balanced stage: the peak of its cosine schedule (no warmup, down to min_lr); None: lr.
    balanced_lr: Optional[float] = None
    # Images per training step on each replica (device); the global batch is batch_size x replicas.
    # 32 gives the demo twice the updates of 64 for 7 % less throughput; 16 costs 40 %.
    batch_size: int = 32
    # tf.distribute: auto uses MirroredStrategy over all local GPUs when there is more than
    # one, else one device; multi_worker needs TF_CONFIG from the launcher.
    strategy: Literal["auto", "none", "mirrored", "multi_worker", "tpu"] = "auto"
    # Compute dtype. auto: mixed_bfloat16 on GPUs of compute capability 8.0+ and on CPUs with
    # AMX or AVX512_BF16, mixed_float16 on 7.x GPUs, else float32 (printed, and kept on resume).
    # Variables and logits stay float32.
    precision: Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"] = "auto"
    # XLA compilation of the train step; auto: Keras turns it on with a GPU/TPU when every
    # layer supports it, off on CPU-only machines.
    jit_compile: Literal["auto", True, False] = "auto"
    # Training batches run in one compiled call (fewer Python round trips on fast
    # accelerators); batch callbacks see every N-th batch, and an epoch is whole calls.
    steps_per_execution: int = 1
    # Also back up the training state every N steps within an epoch (a kill loses at most N
    # steps; on resume that epoch goes on from the batch after the saved step); 0: only at
    # epoch ends.
    save_every_steps: int = 0

    # --- test and predict (mode=test, mode=predict, the test report) ---------------------------
    # Model file for test/predict; "": models/<run_name>/best.keras.
    checkpoint: str = ""
    # Probability above which a class is predicted present (every class's, with
    # class_thresholds='fixed').
    threshold: float = 0.5
    # fitted uses the per-class thresholds fitted on val_labels after training
    # (thresholds.json beside the checkpoint; falls back to fixed with a note when missing);
    # fixed uses `threshold` for every class.
    class_thresholds: Literal["fitted", "fixed"] = "fitted"
    # Divide the logits by the temperature fitted on val_labels (calibration.json beside the
    # checkpoint) so probabilities are calibrated; predicted labels at fitted thresholds do not
    # change. Not with head='groups' (fitted for sigmoid outputs only).
    temperature_scaling: bool = False
    # predict: an image, a folder (searched recursively for jpg/jpeg/png/bmp/gif) or a label file.
    input: str = ""
    # predict: the .csv or .json file to write (per image: predicted labels and every
    # probability); "": predict.csv beside the checkpoint.
    output: str = ""
    # test: write models/<run_name>/report/ (report.md and its figures) and the curves to
    # logs/<run_name>/test/.
    report: bool = True
    # Test report: images in each grid of most confident false positives and false negatives;
    # 0: no grids.
    report_examples: int = 16
    # Test report: classes drawn in the per-class figures (the most frequent in the test
    # labels); the tables list all.
    report_max_classes: int = 64

    # --- export (mode=convert) --------------------------------------------------------------
    # Files written to models/<run_name>/export/. savedmodel takes uint8 images or JPEG/PNG bytes
    # (preprocessing inside); tflite_dynamic_int8 has int8 weights, tflite_int8 is int8
    # throughout (calibrated, for small devices); add "onnx" after pip install tf2onnx.
    formats: tuple[ExportFormat, ...] = ("keras", "savedmodel", "tflite_float32", "tflite_float16",
                                         "tflite_dynamic_int8", "tflite_int8")
    # Test images (first N of test_labels) that every format is compared on against the Keras
    # model (parity.json); 0: the whole split.
    parity_images: int = 1000
    # Random training images (train_labels) that calibrate the activation ranges of tflite_int8.
    calibration_images: int = 200

    # --- pruning (mode=prune: network slimming of a checkpoint trained with slimming_l1) --------
    # Share of the prunable channels removed: the smallest |BatchNorm gamma| of the whole network.
    prune_ratio: float = 0.5
    # Output folder (not an existing one, unless overwrite=True); "": models/<run>/pruned-<ratio>/
    prune_dir: str = ""

    # --- label quality (mode=find_label_errors: out-of-fold predictions ranked by cleanlab) ----
    # K: each fold's labels are judged by a model trained on the other K - 1 folds.
    label_error_folds: int = 5
    # Epochs of each fold's training (its other settings are the run's); None: `epochs`. Train
    # the folds until their loss levels off: on the demo 8 gave a precision of 0.48, 16 gave 0.88.
    label_error_epochs: Optional[int] = None
    # Most suspect labels drawn in label_errors.png (image, class, direction); 0: no image grid.
    label_error_examples: int = 16
