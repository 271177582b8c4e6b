"""The defaults of configs.py, for the settings objects of library code.

Library code (the pipeline, heads, losses, optimisers, export) never reads the run's config: each
part declares the settings it reads as a frozen dataclass with one typed field per setting
(`LossSettings` in multi_label/losses/builder.py, `PipelineSettings` in dataset/pipeline.py, ...),
and a task builds it from the config in one visible place, `multi_label/tasks/settings.py`. A
field's default is the setting's default in configs.py, read from `DEFAULTS`, so a test or another
program can build one directly, with no config at all, and configs.py stays the one home of every
default.
"""

from configs import Config

DEFAULTS = Config()  # every setting at its configs.py default
