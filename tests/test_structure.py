"""The house's structure, read from the source: layers, import circles, sizes, and who reads the config.

Layers, lowest first: configs.py and utils/ -> dataset/ and backbone/ -> multi_label/ -> multi_label/tasks/
-> run.py. Every import is read, the ones inside functions too, since a lazy import is still a dependency:
`import a.b`, `from a import b`, relative imports (`from ..a import b`), `importlib.import_module("a.b")`
with a literal name, and module paths written as strings for an import by name (a registry such as
run.py's MODES or dataset/importers' IMPORTERS). Circles are looked for between modules and between
packages (a module's package is its folder).
"""

import ast
import collections
import pathlib
from typing import NamedTuple

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOP_FILES = ("run.py", "configs.py")
LIBRARY_PACKAGES = ("utils", "dataset", "backbone", "multi_label")
MAX_MODULE_LINES = 400
# configs.py is one page of settings, each with its comment above it: it grows with the settings, not
# with logic, so it has a page limit of its own.
MAX_CONFIG_PAGE_LINES = 480
MAX_FUNCTION_LINES = 60
IMPORT_BY_NAME = ("import_module", "__import__")  # a module that calls one of these imports by name


def layer(module):
    """The layer of a module of the project, or None for a module from outside it."""
    top = module.split(".")[0]
    if module == "multi_label.tasks" or module.startswith("multi_label.tasks."):
        return 3
    return {"configs": 0, "utils": 0, "dataset": 1, "backbone": 1, "multi_label": 2, "run": 4}.get(top)


def module_name(path, root=ROOT):
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_modules(root=ROOT, files=TOP_FILES, packages=LIBRARY_PACKAGES):
    """{module name: path} of the top-level `files` and of every module of the `packages` under `root`."""
    paths = [root / name for name in files if (root / name).is_file()]
    for package in packages:
        paths += sorted((root / package).rglob("*.py"))
    return {module_name(path, root): path for path in paths}


class Import(NamedTuple):
    """One import of a project module: module `source`, in its file `path` at `line`, depends on `target`."""

    source: str
    target: str
    path: pathlib.Path
    line: int

    def __str__(self):
        file = self.source.replace(".", "/") + ("/__init__.py" if self.path.name == "__init__.py" else ".py")
        return f"{file}:{self.line} imports {self.target}"


def package_of(name, modules):
    """A module's package, its folder: itself for an __init__.py, else its parent (run, configs: themselves)."""
    if modules[name].name == "__init__.py" or "." not in name:
        return name
    return name.rpartition(".")[0]


def absolute(name, modules, level, module):
    """The absolute module named by a relative import `from <level dots><module> import ...` in `name`."""
    package = name if modules[name].name == "__init__.py" else name.rpartition(".")[0]
    for _ in range(level - 1):
        package = package.rpartition(".")[0]
    return ".".join(part for part in (package, module) if part)


def project_module(name, modules):
    """The deepest project module that `name` (a dotted path, maybe with a name inside a module) names; None."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def named_imports(name, tree, modules):
    """(line, dotted name) of the `import` and `from ... import` statements, relative ones resolved."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = absolute(name, modules, node.level, node.module) if node.level else node.module
            # `from a.b import c` names module a.b.c when c is a module, else a name inside a.b
            found += [(node.lineno, f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
                      for alias in node.names]
    return found


def docstrings(tree):
    """The ids of the docstring nodes of a module, its classes and functions (they name modules in prose)."""
    owners = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {id(node.body[0].value) for node in ast.walk(tree) if isinstance(node, owners) and node.body
            and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}


def imports_by_name(tree):
    """True when the module calls `importlib.import_module` or `__import__` (or names them, to call later)."""
    return any(isinstance(node, ast.Name) and node.id in IMPORT_BY_NAME
               or isinstance(node, ast.Attribute) and node.attr in IMPORT_BY_NAME for node in ast.walk(tree))


def call_name(node):
    """The name a call calls: `f` of `f(...)` and of `a.f(...)`."""
    return node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)


def string_imports(name, tree, modules):
    """(line, module) of module paths written as strings: `import_module("a.b")` and registries of module paths.

    A string that is a dotted path of a project module ("multi_label.tasks.train", "a.b:function") is
    imported by name somewhere; in a module that imports by name, an undotted one ("configs") is too.
    `import_module(".b", package=__package__)` is resolved like a relative import of `name`.
    """
    found, skip, by_name = [], docstrings(tree), imports_by_name(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and call_name(node) == "import_module" and node.args \
                and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).startswith("."):
            relative = node.args[0].value
            found.append((node.lineno, absolute(name, modules, len(relative) - len(relative.lstrip(".")),
                                                relative.lstrip("."))))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            path = node.value.split(":")[0]
            if path in modules and ("." in path or by_name):
                found.append((node.lineno, path))
    return found


def imports_of(name, path, modules):
    """Every Import of a project module by the module `name` at `path` (itself left out)."""
    tree = ast.parse(path.read_text())
    found = {}
    for line, dotted in named_imports(name, tree, modules) + string_imports(name, tree, modules):
        target = project_module(dotted, modules)
        if target and target != name:
            found.setdefault((target, line), Import(name, target, path, line))
    return sorted(found.values(), key=lambda item: (item.line, item.target))


def all_imports(modules):
    return [item for name, path in modules.items() for item in imports_of(name, path, modules)]


def test_layer_function_knows_every_module():
    assert all(layer(name) is not None for name in project_modules())


def test_no_upward_import():
    upward = [f"{item} (layer {layer(item.source)} -> {layer(item.target)})" for item in all_imports(project_modules())
              if layer(item.target) > layer(item.source)]
    assert upward == []


def strongly_connected(graph):
    """Tarjan's algorithm: the strongly connected components of a {node: set of nodes} graph."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            result.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def shortest_circle(graph, start):
    """The shortest path start -> ... -> start in a {node: set of nodes} graph, as a list of nodes; None."""
    parents, queue = {start: None}, collections.deque([start])
    while queue:
        node = queue.popleft()
        for target in sorted(graph.get(node, ())):
            if target == start:
                path = [node]
                while parents[path[-1]] is not None:
                    path.append(parents[path[-1]])
                return [*reversed(path), start]
            if target not in parents:
                parents[target] = node
                queue.append(target)
    return None


def circles(imports, node_of):
    """One line per circle of the graph whose nodes are `node_of(module)`: its path and the imports that make it.

    Args:
        imports: list[Import]. The imports of the project.
        node_of: callable. Module name -> node (the module itself, or its package).
    """
    by_arrow = collections.defaultdict(list)
    for item in imports:
        if node_of(item.source) != node_of(item.target):
            by_arrow[node_of(item.source), node_of(item.target)].append(item)
    graph = collections.defaultdict(set)
    for source, target in by_arrow:
        graph[source].add(target)
    found = []
    for component in strongly_connected(graph):
        if len(component) > 1:
            path = shortest_circle({n: graph[n] & set(component) for n in component}, component[0])
            arrows = [f"{source} -> {target} by {', '.join(map(str, by_arrow[source, target]))}"
                      for source, target in zip(path, path[1:])]
            found.append(f"circle {' -> '.join(path)} (of {component}): {'; '.join(arrows)}")
    return found


def module_circles(modules):
    return circles(all_imports(modules), lambda name: name)


def package_circles(modules):
    return circles(all_imports(modules), lambda name: package_of(name, modules))


def test_no_import_circle():
    # A package's __init__ importing its own submodules is how a package shows its parts; the
    # submodules importing a sibling through the package is a real dependency on the package.
    assert module_circles(project_modules()) == []


def test_no_package_circle():
    """No two folders import each other, directly or round a loop: each folder is one layer's part."""
    assert package_circles(project_modules()) == []


def test_circle_finder_finds_a_circle():
    assert [c for c in strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) if len(c) > 1] == [
        ["a", "b", "c"]]
    assert shortest_circle({"a": {"b", "d"}, "b": {"c"}, "c": {"a"}, "d": {"b"}}, "a") == ["a", "b", "c", "a"]


def source_files():
    files = [ROOT / "run.py", ROOT / "configs.py"]
    for folder in (*LIBRARY_PACKAGES, "benchmarks", "examples", "learning_notes"):
        files += sorted((ROOT / folder).rglob("*.py"))
    return files


@pytest.mark.parametrize("path", source_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_and_function_sizes(path):
    text = path.read_text()
    limit = MAX_CONFIG_PAGE_LINES if path.name == "configs.py" and path.parent == ROOT else MAX_MODULE_LINES
    assert text.count("\n") <= limit, f"{path.name} has {text.count(chr(10))} lines"
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})"
            for node in ast.walk(ast.parse(text)) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []


def library_modules():
    return {name: path for name, path in project_modules().items() if layer(name) in (0, 1, 2)}


CONFIG_NAMES = ("config", "settings")  # what the run's config, or a settings object, is called where it is read
# The config's own machinery: these load, check, save or explain every setting, by its name.
CONFIG_MACHINERY = {
    "configs": "the page of settings",
    "utils.config": "loads the config and checks each setting",
    "utils.rules.names": "the names of configs.py's Literal types that the rules compare settings against",
    "utils.rules.ranges": "the range of each setting, by setting name",
    "utils.rules.compatibility": "the settings that cannot work together, by setting name",
    "utils.rules.ignored": "the settings that other settings leave unread, by setting name",
    "utils.rules.modes": "what each mode needs, by setting name",
    "utils.rules.order": "checks every rule on the config",
    "utils.defaults": "configs.py's defaults for the settings objects",
    "utils.help": "help=<setting>: the documentation of the setting the user named",
    "utils.run_folder": "saves every setting as config.json; the next run compares them one by one",
}
# Library code that reads settings by string key, by (module, function), in files another change is
# rewriting. Each entry is a debt, not a rule: test_allowed_config_reads_are_still_there fails once
# it is paid, so the entry goes with it.
KERAS_CONFIG_METHODS = ("from_config", "get_config")  # a Keras object's own config dict, not the run's


def receiver(node):
    """`config` or `settings` (also `self.settings`) when `node` names one, else None."""
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
    return name if name in CONFIG_NAMES else None


def config_read(node):
    """What `node` reads of the config, by name or string key ("getattr(config, ...)"); None when nothing."""
    if isinstance(node, ast.ImportFrom) and node.module == "configs" or isinstance(node, ast.Import) and any(
            alias.name == "configs" for alias in node.names):
        return "imports configs"
    if isinstance(node, ast.Call) and node.args and receiver(node.args[0]) \
            and call_name(node) in ("getattr", "hasattr", "vars", "asdict", "astuple", "fields"):
        return f"{call_name(node)}({receiver(node.args[0])}, ...)"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
            and receiver(node.func.value):
        return f"{receiver(node.func.value)}.get(...)"
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and receiver(node.value):
        return f"{receiver(node.value)}[...]"
    if isinstance(node, ast.Attribute) and node.attr == "__dict__" and receiver(node.value):
        return f"{receiver(node.value)}.__dict__"
    return None


def config_reads(tree):
    """(function, line, what) wherever code reads the run's config: takes it, imports it, reads it by key.

    A function that takes a parameter named `config` receives the whole config; `getattr(config,
    "name")`, `config["name"]`, `vars(config)`, `dataclasses.asdict(config)`, `config.get("name")` and
    `config.__dict__` (or the same of a `settings` object) read a setting by string key, a line that
    `grep <setting>` does not find. Keras's from_config and get_config handle a layer's own config dict.
    """
    found = []

    def visit(node, function):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name in KERAS_CONFIG_METHODS:
                return
            function = node.name
            found.extend((function, node.lineno, f"{node.name}(config)") for arg in node.args.args
                         + node.args.kwonlyargs if arg.arg == "config")
        what = config_read(node)
        if what:
            found.append((function, node.lineno, what))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(tree, "")
    return found


def library_config_reads(name, path):
    return [] if name in CONFIG_MACHINERY else config_reads(ast.parse(path.read_text()))


@pytest.mark.parametrize("name", sorted(library_modules()))
def test_library_code_does_not_read_the_config(name):
    """Only the tasks read the Config; library code takes the values it needs, each read by its name."""
    found = [f"{what} in {function or 'the module'} (line {line})"
             for function, line, what in library_config_reads(name, library_modules()[name])]
    assert found == []


def test_config_read_checker_catches_reads_by_string_key():
    source = """
import dataclasses
from configs import Config

def build(config): return config.loss
def by_getattr(settings, key): return getattr(settings, key)
def by_default(settings): return getattr(settings, "loss", "bce")
def by_hasattr(settings): return hasattr(settings, "loss")
def by_subscript(config): return config["loss"]
def by_vars(settings): return vars(settings)["loss"]
def by_asdict(settings): return dataclasses.asdict(settings)
def by_dict(self): return self.settings.__dict__
def by_get(settings): return settings.get("loss")
"""
    found = {(function, what) for function, _, what in config_reads(ast.parse(source))}
    assert found == {("", "imports configs"), ("build", "build(config)"), ("by_getattr", "getattr(settings, ...)"),
                     ("by_default", "getattr(settings, ...)"), ("by_hasattr", "hasattr(settings, ...)"),
                     ("by_subscript", "by_subscript(config)"), ("by_subscript", "config[...]"),
                     ("by_vars", "vars(settings, ...)"), ("by_asdict", "asdict(settings, ...)"),
                     ("by_dict", "settings.__dict__"), ("by_get", "settings.get(...)")}


def test_config_read_checker_leaves_named_reads_and_keras_configs():
    source = """
def build(settings): return settings.loss, settings.label_smoothing
class Layer:
    def get_config(self):
        config = super().get_config()
        config["units"] = self.units
        return {**config, "rate": config["rate"]}
    @classmethod
    def from_config(cls, config): return cls(**config["inner"])
"""
    assert config_reads(ast.parse(source)) == []


def write_tree(root, files):
    """Writes {relative path: source} under `root`; returns its modules, as project_modules finds them."""
    for relative, source in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(source)
    return project_modules(root, files=(), packages=("pkg",))


def test_package_circle_checker_finds_a_circle_no_module_circle_shows(tmp_path):
    modules = write_tree(tmp_path, {
        "pkg/__init__.py": "", "pkg/a/__init__.py": "", "pkg/b/__init__.py": "",
        "pkg/a/low.py": "X = 1\n",
        "pkg/a/high.py": "from pkg.b.middle import Y\n",
        "pkg/b/middle.py": "\n\ndef f():\n    from pkg.a import low\n    return low.X\n",
    })
    assert module_circles(modules) == []
    assert package_circles(modules) == [
        "circle pkg.a -> pkg.b -> pkg.a (of ['pkg.a', 'pkg.b']): pkg.a -> pkg.b by pkg/a/high.py:1 imports "
        "pkg.b.middle; pkg.b -> pkg.a by pkg/b/middle.py:4 imports pkg.a.low"]


def test_relative_imports_are_resolved_and_make_circles(tmp_path):
    modules = write_tree(tmp_path, {
        "pkg/__init__.py": "", "pkg/b/middle.py": "Y = 1\n",
        "pkg/a/__init__.py": "from . import low\n",
        "pkg/a/low.py": "from .high import Z\nfrom ..b import middle\n",
        "pkg/a/high.py": "Z = 1\n",
        "pkg/b/__init__.py": "from ..a.low import middle\n",
    })
    assert {name: {item.target for item in imports_of(name, path, modules)} for name, path in modules.items()} == {
        "pkg": set(), "pkg.a": {"pkg.a.low"}, "pkg.a.low": {"pkg.a.high", "pkg.b.middle"}, "pkg.a.high": set(),
        "pkg.b": {"pkg.a.low"}, "pkg.b.middle": set()}
    assert [line.split(" (")[0] for line in package_circles(modules)] == ["circle pkg.a -> pkg.b -> pkg.a"]


def test_import_by_name_strings_are_imports(tmp_path):
    modules = write_tree(tmp_path, {
        "pkg/__init__.py": "", "pkg/a/__init__.py": "", "pkg/b/__init__.py": "",
        "pkg/a/registry.py": ('"""Names pkg.b.c in its docstring: not an import."""\nimport importlib\n'
                              'PARTS = {"c": ("pkg.b.c", "run")}\n\n\ndef load(key):\n'
                              '    return importlib.import_module(PARTS[key][0])\n'),
        "pkg/a/low.py": "X = 1\n",
        "pkg/a/own.py": "import importlib\nOWN = importlib.import_module('.low', package=__package__)\n",
        "pkg/b/c.py": "import importlib\n\n\ndef run():\n    return importlib.import_module('pkg.a.low').X\n",
        "pkg/b/doc.py": '"""Mentions pkg.a.registry."""\n',
    })
    assert [(item.target, item.line) for item in imports_of("pkg.a.registry", modules["pkg.a.registry"], modules)] == [
        ("pkg.b.c", 3)]
    assert [item.target for item in imports_of("pkg.a.own", modules["pkg.a.own"], modules)] == ["pkg.a.low"]
    assert imports_of("pkg.b.doc", modules["pkg.b.doc"], modules) == []
    assert [line.split(" (")[0] for line in package_circles(modules)] == ["circle pkg.a -> pkg.b -> pkg.a"]


def test_config_page_is_at_most_100_columns():
    long = [number for number, line in enumerate((ROOT / "configs.py").read_text().splitlines(), 1)
            if len(line) > 100]
    assert long == []


def test_no_two_modules_share_a_file_name():
    """A name says which module it is: no `precision.py` in two packages, no `split.py` beside `splits.py`."""
    by_name = {}
    for name, path in project_modules().items():
        if path.name != "__init__.py":
            by_name.setdefault(path.name, []).append(name)
    assert {file: names for file, names in by_name.items() if len(names) > 1} == {}
    stems = {path.stem for path in project_modules().values()} - {"configs"}  # the page users know by name
    assert sorted(stem for stem in stems if stem.endswith("s") and stem[:-1] in stems) == []
