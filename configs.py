"""The page of settings. Edit the defaults here, or override any of them on the command line:

    python run.py epochs=30 lr=3e-4 backbone="resnet50" run_name="cars-r50"
    python run.py config=my_config.py mode=test

Each setting says what it does and which values it takes. Values are Python literals.
"""

from dataclasses import dataclass
from typing import Literal, Optional


@dataclass
class Config:
    # --- what to do -------------------------------------------------------------------------
    mode: Literal["train", "test", "predict", "check", "import", "stats", "debug", "convert"] = "train"  # train (then test when test_labels is set), test, predict, check labels, import a dataset, label statistics, debug (layer statistics of one batch), convert (export to SavedModel, TFLite, ONNX with a parity report)
    run_name: str = "demo"  # names the output folders models/<run_name>/ and logs/<run_name>/; the same name resumes the same run
    overwrite: bool = False  # allow a new training run in a folder that holds a run with different settings (its files are moved to a backup folder, never deleted)
    seed: int = 42  # seeds data order, augmentation, initial weights and the demo data
    deterministic: bool = False  # make CPU runs bit-for-bit repeatable (slower: single-threaded data pipeline)
    save_every_steps: int = 0  # also back up the training state every N steps within an epoch (a kill loses at most N steps; on resume that epoch restarts from its first batch with the saved weights); 0: only at epoch ends

    # --- data -------------------------------------------------------------------------------
    train_labels: str = "data/demo/train.csv"  # training label file: canonical CSV (image,<class>...,  values 1/0/-1) or the space-separated text format
    val_labels: str = "data/demo/val.csv"  # validation label file, used for the best checkpoint (by mAP); "" to train without validation
    test_labels: str = "data/demo/test.csv"  # test label file for mode=test and after training; "" to skip
    image_root: Optional[str] = None  # folder that image paths are relative to; None: each label file's own folder
    class_names: Optional[list] = None  # class names, needed only for the text label format (CSV headers name the classes)
    demo_data_dir: str = "data/demo"  # label files inside this folder that are missing are generated from scikit-learn's digits
    demo_images: int = 30000  # images in the generated demo data, split 70/10/20 into train/val/test (many unique images keep a ResNet from memorising them)
    image_size: int = 64  # side in pixels that images are resized to (square); 224 or 448 for photos
    data_format: Literal["files", "tfrecord"] = "files"  # read images from their files, or from TFRecord shards written on first use (faster on network disks)
    tfrecord_dir: str = ""  # where TFRecord shards go; "": beside each label file, in <label file>.tfrecords/
    cache_images: bool = True  # keep decoded, resized images in memory after the first epoch (fits small datasets; turn off for large ones)
    shuffle_buffer: int = 4096  # images in the shuffle buffer

    # --- data tools (mode=check, mode=import) -------------------------------------------------
    check_strict: bool = True  # check: also leave CMYK JPEGs and 16-bit PNGs out of the clean file (TensorFlow decodes them right, other loaders may not); False keeps them, reported as notes
    import_format: Literal["coco", "voc", "names", "text"] = "voc"  # annotation format to convert: coco (instances JSON), voc (Annotations/*.xml or XML beside images), names (image,label names CSV), text (path v1 ... vC)
    import_source: str = ""  # the annotation file (coco, names, text) or dataset folder (voc) to import
    import_output: str = ""  # the canonical CSV to write (never overwritten unless overwrite=True)
    import_val_fraction: float = 0.0  # import: also split the imported file (train.csv) into train.fit.csv and train.val.csv beside it, this share held out for validation (stratified per class, from `seed`); 0: no split
    import_options: Optional[dict] = None  # extra options of the importer, e.g. {"split": "train"} (voc), {"crowd": "ignore"} (coco), {"delimiter": ";"} (names); see the README

    # --- augmentation (training only; evaluation only resizes, after center_crop) -------------
    flip: Literal["none", "horizontal", "vertical", "both"] = "none"  # random flips; "none" for digits and text, whose meaning flips change
    crop_scale: Optional[tuple] = None  # random resized crop: (min, max) fraction of the image area kept, e.g. (0.5, 1.0); None: off (a crop can cut a labelled object out of the image)
    crop_ratio: tuple = (0.75, 1.33)  # random resized crop: (min, max) aspect ratio of the crop
    color_jitter: float = 0.0  # strength of random brightness, contrast and saturation changes, e.g. 0.2; 0: off
    hue_jitter: float = 0.0  # random hue shift up to this fraction of the colour circle either way, in [0, 0.5], e.g. 0.05; 0: off
    rotation: float = 0.0  # random rotation up to this many degrees either way (edges reflected), e.g. 10; 0: off
    gaussian_noise: float = 0.0  # standard deviation of added Gaussian noise in pixel units (0-255), e.g. 5; 0: off
    salt_and_pepper: float = 0.0  # fraction of pixels set to black or white, e.g. 0.01; 0: off
    cutout: float = 0.0  # random erasing: each erased square covers this fraction of the image area (filled with the image's mean colour), e.g. 0.1; 0: off
    cutout_count: int = 1  # random erasing: squares erased per image
    multiscale_crop: Optional[tuple] = None  # multi-scale crop (SSGRL): a random square crop whose side is a random entry of this list times the shorter side, resized to image_size, e.g. (1.0, 0.875, 0.75, 0.66, 0.5); None: off
    mixup_alpha: float = 0.0  # MixUp of each training batch with itself reversed, weight ~ Beta(alpha, alpha), e.g. 0.2; targets mixed alike, unknown (-1) where either image's label is; 0: off
    cutmix_alpha: float = 0.0  # CutMix (a box of the reversed batch pasted in), box area ~ Beta(alpha, alpha), e.g. 1.0; targets weighted by area, -1 as for MixUp; with both on, each batch uses one at random; 0: off
    randaugment_ops: int = 0  # RandAugment (Cubuk 2020): operations applied per image, drawn from the paper's 14 (e.g. 2); 0: off
    randaugment_magnitude: float = 9.0  # RandAugment: strength of each operation on the paper's 0-10 scale (10: rotate 30 degrees, shear 0.3, translate 0.45 of the side, enhance factors 1 +- 0.9)
    center_crop: float = 1.0  # evaluation: keep this central fraction of each side before resizing (e.g. 0.875 as in ImageNet evaluation); the exported SavedModel crops alike; 1.0: off
    repeat_factor_threshold: float = 0.0  # repeat-factor sampling (LVIS): each epoch repeats an image sqrt(t / frequency of its rarest class) times (stochastic rounding), e.g. 0.05; 0: off

    # --- model ------------------------------------------------------------------------------
    backbone: str = "resnet18"  # feature extractor: resnet18/34/50/101/152, resnext18, resnext50_32x4d, resnext101_32x8d, preact_resnet18/34/50/101 (pre-activation); keras.applications: keras_resnet50, keras_resnet101, keras_resnet50v2, keras_resnet101v2, efficientnetv2_b0, efficientnetv2_s, convnext_tiny, mobilenetv2, mobilenetv3_small, mobilenetv3_large
    backbone_width: float = 0.5  # channel width multiplier of the hand-written ResNets: 1.0 is the published network; 0.5 (a quarter of the compute) trains the demo within minutes on a CPU
    backbone_weights: str = "none"  # initial backbone weights: none, imagenet (keras.applications backbones; downloaded once), or a path to a .keras / .weights.h5 file of a model with this backbone or a Keras *_notop.h5 file
    normalization: Literal["backbone", "imagenet", "standardize", "unit"] = "backbone"  # input normalisation: the backbone's default, ImageNet mean/std, per-image standardisation, or [0, 1]
    head: Literal["linear", "groups", "csra", "ml_gcn", "ssgrl"] = "linear"  # classifier head: linear (pooling, dropout, dense logits with one sigmoid per class), groups (one softmax per attribute group), csra (class-specific residual attention), ml_gcn (GCN over the label graph), ssgrl (label-guided attention + gated graph network)
    pooling: Literal["avg", "max", "avg+max", "flatten"] = "max"  # pooling of the feature map before the linear or groups head: global avg, max (suits small objects anywhere in the image) or both; flatten keeps where each feature is (groups of positional attributes, e.g. each character of a licence plate)
    dropout: float = 0.0  # dropout rate before the classifier

    # --- loss -------------------------------------------------------------------------------
    loss: Literal["bce", "focal", "ghm", "asl"] = "bce"  # training loss: bce, focal (Lin 2017), ghm (GHM-C, Li 2019) or asl (asymmetric, Ridnik 2021); -1 labels are ignored by all
    label_smoothing: float = 0.0  # moves targets 1/0 to 1-s/2 and s/2 (0.1 gives 0.95/0.05), for every loss
    pos_weight: Optional[object] = None  # weight of the positive term per class: None, a list of C numbers, or "auto" (negatives/positives from the training labels)
    focal_gamma: float = 2.0  # focal: focusing exponent; 0 gives BCE
    focal_alpha: float = 0.25  # focal: weight of positives (negatives get 1-alpha); < 0 turns the weighting off
    ghm_bins: int = 30  # GHM: number of gradient-norm bins on [0, 1]
    ghm_momentum: float = 0.75  # GHM: moving-average momentum of the bin counts; 0 uses each batch alone
    asl_gamma_pos: float = 0.0  # ASL: focusing exponent for positives
    asl_gamma_neg: float = 4.0  # ASL: focusing exponent for negatives
    asl_clip: float = 0.05  # ASL: probability shift for negatives (easy negatives below it give no loss)

    # --- optimisation -----------------------------------------------------------------------
    optimizer: Literal["sgd", "adam", "adamw", "radam", "lion"] = "adam"  # sgd (momentum, nesterov), adam, adamw, radam (rectified Adam, Liu 2020) or lion
    lr: float = 2e-3  # peak learning rate (after warmup)
    momentum: float = 0.9  # sgd: momentum
    nesterov: bool = True  # sgd: Nesterov momentum
    beta_1: float = 0.9  # adam/adamw/radam/lion: first-moment decay
    beta_2: float = 0.999  # adam/adamw/radam/lion: second-moment decay (lion: update interpolation)
    epsilon: float = 1e-7  # adam/adamw/radam: added to the denominator for stability
    weight_decay: float = 0.0  # decoupled weight decay applied by the optimizer to all weights; 0: off
    weight_decay_conv: float = 5e-5  # L2 strength on conv and dense kernels (loss += s * sum(w^2)); 0: off
    weight_decay_bn_gamma: float = 0.0  # L2 strength on BatchNorm gamma (raise it against over-fitting); 0: off
    clipnorm: Optional[float] = None  # clip each gradient to this L2 norm; None: off
    lr_schedule: Literal["constant", "cosine", "step", "exponential", "plateau"] = "cosine"  # after warmup: constant, cosine to min_lr, step (lr_steps table), exponential (lr_decay_rate per epoch) or plateau (cut on val mAP plateau)
    warmup_epochs: float = 0.5  # epochs of linear warmup from 0 to lr
    warmup_steps: int = 0  # warmup length in steps; > 0 overrides warmup_epochs
    min_lr: float = 0.0  # cosine: final learning rate
    lr_steps: Optional[dict] = None  # step: {epoch: multiplier of lr from that epoch on}, e.g. {30: 0.1, 60: 0.01}
    lr_decay_rate: float = 0.9  # exponential: lr multiplier per epoch
    plateau_factor: float = 0.1  # plateau: lr multiplier when val mAP stops improving
    plateau_patience: int = 3  # plateau: epochs without improvement before the cut
    ema_decay: float = 0.0  # keep an exponential moving average of the weights (e.g. 0.999) and validate/save it; 0: off
    gradient_accumulation_steps: int = 1  # sum gradients over this many batches per update (a larger effective batch); 1: off
    scale_lr_with_batch: bool = False  # linear scaling rule (Goyal 2017): lr * effective batch / base_batch_size
    base_batch_size: int = 256  # the batch size that lr is given for when scale_lr_with_batch is on
    epochs: int = 8  # training epochs
    batch_size: int = 64  # images per training step on each replica (device); the global batch is batch_size x replicas
    strategy: Literal["auto", "none", "mirrored", "multi_worker", "tpu"] = "auto"  # tf.distribute: auto (MirroredStrategy over all local GPUs when more than one, else one device), none (one device), mirrored (all local GPUs), multi_worker (MultiWorkerMirroredStrategy; TF_CONFIG set by the launcher), tpu
    precision: Literal["float32", "mixed_float16", "mixed_bfloat16"] = "float32"  # compute dtype: float32, mixed_float16 (GPUs; automatic loss scaling) or mixed_bfloat16 (TPUs, recent GPUs and CPUs); variables and logits stay float32
    jit_compile: Literal["auto", True, False] = "auto"  # XLA compilation of the train step: auto (Keras: on with a GPU/TPU when every layer supports it, off on CPU-only machines), True or False
    steps_per_execution: int = 1  # training batches run in one compiled call (fewer Python round trips on fast accelerators); batch callbacks see every N-th batch

    # --- test and predict -------------------------------------------------------------------
    checkpoint: str = ""  # model file for test/predict; "": models/<run_name>/best.keras
    threshold: float = 0.5  # probability above which a class is predicted present

    # --- prediction and reports -------------------------------------------------------------
    # (settings of mode=predict, the test report, thresholds and debug mode)
    thresholds: Literal["fitted", "fixed"] = "fitted"  # test/predict: "fitted" uses the per-class thresholds fitted on val_labels after training (thresholds.json beside the checkpoint; falls back to fixed with a note when missing), "fixed" uses `threshold` for every class
    temperature_scaling: bool = False  # test/predict: divide the logits by the temperature fitted on val_labels (calibration.json beside the checkpoint) so probabilities are calibrated; predicted labels at fitted thresholds do not change
    input: str = ""  # predict: an image, a folder (searched recursively for jpg/jpeg/png/bmp/gif) or a label file
    output: str = ""  # predict: the .csv or .json file to write (per image: predicted labels and every probability); "": predict.csv beside the checkpoint
    report: bool = True  # test: write models/<run_name>/report/ (report.md and its figures) and the curves to logs/<run_name>/test/
    report_examples: int = 16  # test report: images in each grid of most confident false positives and false negatives; 0: no grids
    report_max_classes: int = 64  # test report: classes drawn in the per-class figures (the most frequent in the test labels); the tables list all

    # --- export -----------------------------------------------------------------------------
    # (settings of mode=convert)
    formats: tuple = ("keras", "savedmodel", "tflite_float32", "tflite_float16", "tflite_dynamic_int8", "tflite_int8")  # convert: files written to models/<run_name>/export/: keras, savedmodel (uint8 images or JPEG/PNG bytes in, preprocessing inside), tflite_float32, tflite_float16, tflite_dynamic_int8 (int8 weights), tflite_int8 (full int8, calibrated), onnx (needs pip install tf2onnx)
    parity_images: int = 1000  # convert: test images (first N of test_labels) that every format is compared on against the Keras model (parity.json); 0: the whole split
    calibration_images: int = 200  # convert: random training images (train_labels) that calibrate the activation ranges of tflite_int8

    # --- heads and backbones ----------------------------------------------------------------
    # (settings of the label-graph and group heads, fine-tuning)
    groups: Optional[dict] = None  # head=groups: {group: number of classes} in label-file column order, e.g. {"colour": 12, "type": 6}; each label is a class index in its group, -1 unknown
    freeze_epochs: int = 0  # train only the head for this many first epochs (backbone frozen, its BatchNorm in inference mode), then everything; 0: off
    backbone_lr_multiplier: float = 1.0  # the backbone learns at lr times this (e.g. 0.1 for pretrained weights); the head at lr
    csra_heads: int = 1  # csra: attention heads; 1, 2, 4, 6 or 8 use the paper's temperatures (1: [1], 2: [1, 99], 4: [1, 2, 4, 99], ...)
    csra_temperatures: Optional[list] = None  # csra: softmax temperature of each head (99 = max pooling), e.g. [1, 99]; None: the paper's set for csra_heads
    csra_lambda: float = 0.1  # csra: weight of the class-specific attention logit added to the average-pooled one
    label_embeddings: str = ""  # ml_gcn/ssgrl: GloVe-format text file of word vectors for the class names (multi-word names averaged); "": learned embeddings
    graph_hidden: int = 1024  # ml_gcn: width of the hidden graph convolution; ssgrl: rank of the bilinear attention
    gcn_threshold: float = 0.4  # ml_gcn: tau; label pairs with P(j|i) below it get no edge
    gcn_reweight: float = 0.2  # ml_gcn: p; share of a class's classifier taken from its graph neighbours
    ssgrl_steps: int = 3  # ssgrl: propagation steps T of the gated graph network
