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
    mode: Literal["train", "test", "predict", "check", "import", "stats"] = "train"  # train (then test when test_labels is set), test, predict, check labels, import a dataset, label statistics
    run_name: str = "demo"  # names the output folders models/<run_name>/ and logs/<run_name>/; the same name resumes the same run
    overwrite: bool = False  # allow a new training run in a folder that holds a run with different settings (its files are moved to a backup folder, never deleted)
    seed: int = 42  # seeds data order, augmentation, initial weights and the demo data
    deterministic: bool = False  # make CPU runs bit-for-bit repeatable (slower: single-threaded data pipeline)

    # --- data -------------------------------------------------------------------------------
    train_labels: str = "data/demo/train.csv"  # training label file: canonical CSV (image,<class>...,  values 1/0/-1) or the space-separated text format
    val_labels: str = "data/demo/val.csv"  # validation label file, used for the best checkpoint (by mAP); "" to train without validation
    test_labels: str = "data/demo/test.csv"  # test label file for mode=test and after training; "" to skip
    image_root: Optional[str] = None  # folder that image paths are relative to; None: each label file's own folder
    class_names: Optional[list] = None  # class names, needed only for the text label format (CSV headers name the classes)
    demo_data_dir: str = "data/demo"  # label files inside this folder that are missing are generated from scikit-learn's digits
    demo_images: int = 8000  # images in the generated demo data, split 70/10/20 into train/val/test
    image_size: int = 64  # side in pixels that images are resized to (square); 224 or 448 for photos
    cache_images: bool = True  # keep decoded, resized images in memory after the first epoch (fits small datasets; turn off for large ones)
    shuffle_buffer: int = 4096  # images in the shuffle buffer

    # --- augmentation (training only; evaluation only resizes) --------------------------------
    flip: Literal["none", "horizontal", "vertical", "both"] = "none"  # random flips; "none" for digits and text, whose meaning flips change
    crop_scale: Optional[tuple] = (0.7, 1.0)  # random resized crop: (min, max) fraction of the image area kept; None: off
    crop_ratio: tuple = (0.75, 1.33)  # random resized crop: (min, max) aspect ratio of the crop
    color_jitter: float = 0.2  # strength of random brightness, contrast and saturation changes; 0: off

    # --- model ------------------------------------------------------------------------------
    backbone: str = "resnet18"  # feature extractor: resnet18, resnet34, resnet50, resnet101, resnet152, resnext50_32x4d, ...
    backbone_width: float = 1.0  # channel width multiplier of the hand-written ResNets (0.5 halves every layer; for tiny tests)
    backbone_weights: str = "none"  # initial backbone weights: none, or a path to a .weights.h5 file
    normalization: Literal["backbone", "imagenet", "standardize", "unit"] = "backbone"  # input normalisation: the backbone's default, ImageNet mean/std, per-image standardisation, or [0, 1]
    head: Literal["linear"] = "linear"  # classifier head: linear (pooling, dropout, dense logits with one sigmoid per class)
    pooling: Literal["avg", "max", "avg+max"] = "avg"  # global pooling of the feature map before the linear head
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
    warmup_epochs: float = 1.0  # epochs of linear warmup from 0 to lr
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
    epochs: int = 12  # training epochs
    batch_size: int = 64  # images per training step

    # --- test and predict -------------------------------------------------------------------
    checkpoint: str = ""  # model file for test/predict; "": models/<run_name>/best.keras
    threshold: float = 0.5  # probability above which a class is predicted present

    # --- prediction and reports -------------------------------------------------------------
    # (settings of mode=predict, the test report, thresholds and debug mode)

    # --- export -----------------------------------------------------------------------------
    # (settings of mode=convert)

    # --- heads and backbones ----------------------------------------------------------------
    # (settings of the label-graph and group heads, fine-tuning)
