"""Everything about labels and images.

Label files, importers, the checker, splits, statistics, sampling, augmentation, the tf.data and
TFRecord pipelines, and the demo data.
"""
