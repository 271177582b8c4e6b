"""Where a mode turns the run's config into the settings objects of library code.

Every setting that library code reads passes through here by name, once: `grep focal_gamma` lands
on configs.py, on the field of `LossSettings`, on its line below and on the line of the loss
builder that uses it. `changes` replace values read from the config (a mode that predicts reads
no cache, a pruned model is built from its plan).
"""

import dataclasses

from dataset.pipeline import PipelineSettings
from dataset.run_splits import SplitSettings
from multi_label.heads import HeadSettings
from multi_label.losses import LossSettings
from multi_label.model import ModelSettings
from multi_label.optim.optimizers import OptimizerSettings
from multi_label.optim.schedules import ScheduleSettings


def split_settings(config, **changes):
    """The label files of a run and how to read them."""
    return dataclasses.replace(SplitSettings(
        train_labels=config.train_labels, val_labels=config.val_labels, test_labels=config.test_labels,
        image_root=config.image_root, class_names=config.class_names, groups=config.groups,
        batch_size=config.batch_size), **changes)


def pipeline_settings(config, **changes):
    """What the input pipeline reads: sizes, caching, sampling and augmentation."""
    return dataclasses.replace(PipelineSettings(
        image_size=config.image_size, batch_size=config.batch_size, cache_images=config.cache_images,
        shuffle_buffer=config.shuffle_buffer, seed=config.seed, deterministic=config.deterministic,
        center_crop=config.center_crop, repeat_factor_threshold=config.repeat_factor_threshold,
        epochs=config.epochs, balanced_epochs=config.balanced_epochs, mixup_alpha=config.mixup_alpha,
        cutmix_alpha=config.cutmix_alpha, flip=config.flip, crop_scale=config.crop_scale,
        crop_ratio=config.crop_ratio, multiscale_crop=config.multiscale_crop,
        randaugment_ops=config.randaugment_ops, randaugment_magnitude=config.randaugment_magnitude,
        rotation=config.rotation, color_jitter=config.color_jitter, hue_jitter=config.hue_jitter,
        gaussian_noise=config.gaussian_noise, salt_and_pepper=config.salt_and_pepper,
        cutout=config.cutout, cutout_count=config.cutout_count), **changes)


def head_settings(config):
    """The head's settings, a part of `model_settings`."""
    return HeadSettings(
        head=config.head, pooling=config.pooling, dropout=config.dropout, groups=config.groups,
        csra_heads=config.csra_heads, csra_temperatures=config.csra_temperatures,
        csra_lambda=config.csra_lambda, label_embeddings=config.label_embeddings,
        graph_hidden=config.graph_hidden, gcn_threshold=config.gcn_threshold,
        gcn_reweight=config.gcn_reweight, ssgrl_steps=config.ssgrl_steps,
        decoder_layers=config.decoder_layers, decoder_width=config.decoder_width,
        decoder_heads=config.decoder_heads, decoder_feedforward=config.decoder_feedforward,
        decoder_dropout=config.decoder_dropout, ml_decoder_groups=config.ml_decoder_groups)


def model_settings(config, **changes):
    """What `build_model` reads: the input and backbone settings, and the head's."""
    return dataclasses.replace(ModelSettings(
        **dataclasses.asdict(head_settings(config)),
        backbone=config.backbone, backbone_width=config.backbone_width,
        backbone_weights=config.backbone_weights, normalization=config.normalization,
        image_size=config.image_size, pruned_channels=config.pruned_channels,
        slimming_l1=config.slimming_l1), **changes)


def loss_settings(config):
    """The loss, its class weighting and its family's own settings."""
    return LossSettings(
        loss=config.loss, label_smoothing=config.label_smoothing, pos_weight=config.pos_weight,
        class_weighting=config.class_weighting, class_weight_beta=config.class_weight_beta,
        unknown_labels=config.unknown_labels, focal_gamma=config.focal_gamma,
        focal_alpha=config.focal_alpha, ghm_bins=config.ghm_bins, ghm_momentum=config.ghm_momentum,
        asl_gamma_pos=config.asl_gamma_pos, asl_gamma_neg=config.asl_gamma_neg,
        asl_clip=config.asl_clip, hill_lamb=config.hill_lamb, hill_margin=config.hill_margin,
        hill_gamma=config.hill_gamma, splc_tau=config.splc_tau, splc_margin=config.splc_margin,
        splc_gamma=config.splc_gamma, splc_start_epoch=config.splc_start_epoch,
        llr_rate_per_epoch=config.llr_rate_per_epoch,
        epr_expected_positives=config.epr_expected_positives)


def schedule_settings(config):
    """The learning-rate schedule's settings, a part of `optimizer_settings`."""
    return ScheduleSettings(
        lr_schedule=config.lr_schedule, lr=config.lr, epochs=config.epochs,
        warmup_epochs=config.warmup_epochs, warmup_steps=config.warmup_steps, min_lr=config.min_lr,
        lr_steps=config.lr_steps, lr_decay_rate=config.lr_decay_rate,
        plateau_factor=config.plateau_factor, plateau_patience=config.plateau_patience,
        balanced_epochs=config.balanced_epochs, balanced_lr=config.balanced_lr)


def optimizer_settings(config):
    """What `build_optimizer` reads: the optimiser's settings, and its schedule's."""
    return OptimizerSettings(
        **dataclasses.asdict(schedule_settings(config)),
        optimizer=config.optimizer, momentum=config.momentum, nesterov=config.nesterov,
        beta_1=config.beta_1, beta_2=config.beta_2, epsilon=config.epsilon,
        weight_decay=config.weight_decay, clipnorm=config.clipnorm,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        ema_decay=config.ema_decay, scale_lr_with_batch=config.scale_lr_with_batch,
        base_batch_size=config.base_batch_size)
