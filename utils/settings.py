"""Small frozen settings objects for library code, picked by name from the run's config.

Library code (the pipeline, heads, losses, optimisers, export) declares the values it reads as a
frozen dataclass of config setting names (`settings_class`), and receives an instance of it
instead of the whole config. A task builds one with `pick(PipelineSettings, config)`; a test or
another program builds one directly, with no config at all.
"""

import dataclasses
import typing


def pick(settings_class, source, **overrides):
    """Builds `settings_class` from the same-named attributes of `source`.

    Args:
        settings_class: type. A dataclass whose field names are setting names.
        source: object. The config (or any object with those attributes, e.g. a larger settings
            object).
        **overrides: values that replace the ones read from `source`.

    Returns:
        An instance of `settings_class`.

    Raises:
        AttributeError: `source` lacks one of the fields (a typo in a settings class fails at once,
            it is never filled with a default).
    """
    values = {field.name: getattr(source, field.name) for field in dataclasses.fields(settings_class)
              if field.name not in overrides}
    return settings_class(**values, **overrides)


def settings_class(name, setting_names, doc, module, bases=()):
    """A frozen dataclass of the named config settings, with configs.py's types and defaults.

    configs.py stays the one home of every setting's type, default and meaning; a library module
    only names the settings it reads.

    Args:
        name: str. The class name, e.g. "LossSettings".
        setting_names: str. The settings, separated by white space, in the order of the fields.
        doc: str. The class docstring: what reads these settings.
        module: str. The defining module's `__name__` (for repr, pickling and documentation).
        bases: tuple. Settings classes whose fields come first.

    Raises:
        KeyError: a name that is not a setting of configs.py.
    """
    from configs import Config  # the page of settings: the only source of types and defaults

    hints = typing.get_type_hints(Config)
    defaults = {field.name: field.default for field in dataclasses.fields(Config)}
    fields = [(key, hints[key], dataclasses.field(default=defaults[key])) for key in setting_names.split()]
    cls = dataclasses.make_dataclass(name, fields, bases=bases, frozen=True)
    cls.__doc__, cls.__module__ = doc, module
    return cls
