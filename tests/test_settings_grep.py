"""Every setting of configs.py can be followed with grep to the line that uses it.

Outside configs.py, the tests, the rules that check the config and `multi_label/tasks/settings.py`
(which only hands each setting on by name), every setting is read as an attribute of the config or
of a settings object (`config.loss`, `settings.focal_gamma`): never only through a string (a name
prefix, `getattr(settings, name)`, a list of names), where grep would find the string and not the use.
"""

import ast
import dataclasses
import pathlib

from configs import Config

ROOT = pathlib.Path(__file__).resolve().parent.parent
HOLDERS = ("config", "settings", "run", "fold_config")  # the names a config or settings object goes by
NOT_USES = ("configs.py", "multi_label/tasks/settings.py")  # they declare a setting or hand it on


def attribute_reads(source):
    """{setting name} read as `<holder>.<name>` in `source`, a holder being one of HOLDERS."""
    reads = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            holder = node.value
            name = holder.id if isinstance(holder, ast.Name) else getattr(holder, "attr", None)
            if name in HOLDERS:
                reads.add(node.attr)
    return reads


def code_files():
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative.split("/")[0] in (".venv", "tests", "data", "models", "logs"):
            continue
        if relative in NOT_USES or path.stem.endswith("rules"):
            continue
        yield path


def test_every_setting_is_read_by_name_outside_configs_tests_and_rules():
    reads = set().union(*(attribute_reads(path.read_text()) for path in code_files()))
    unread = [field.name for field in dataclasses.fields(Config) if field.name not in reads]
    assert unread == [], f"settings never read as config.<name> or settings.<name>: {unread}"


def test_a_setting_read_through_a_string_is_not_a_read():
    # how settings reached the losses before: a name prefix and getattr; grep found only a string
    source = 'prefix = f"{settings.loss}_"\nvalue = getattr(settings, prefix + "gamma")\n'
    assert attribute_reads(source) == {"loss"}
    assert attribute_reads("gamma = self.settings.focal_gamma\nx = table.focal_alpha\n") == {"focal_gamma"}
