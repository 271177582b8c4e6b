"""The house's structure, read from the source: layers, import circles, sizes, and who reads the config.

Layers, lowest first: configs.py and utils/ -> dataset/ and backbone/ -> multi_label/ -> multi_label/tasks/
-> run.py. Every import is read, the ones inside functions too, since a lazy import is still a dependency.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LIBRARY_PACKAGES = ("utils", "dataset", "backbone", "multi_label")
MAX_MODULE_LINES = 400
# configs.py is one page of settings, each with its comment above it: it grows with the settings, not
# with logic, so it has a page limit of its own.
MAX_CONFIG_PAGE_LINES = 480
MAX_FUNCTION_LINES = 60


def layer(module):
    """The layer of a module of the project, or None for a module from outside it."""
    top = module.split(".")[0]
    if module == "multi_label.tasks" or module.startswith("multi_label.tasks."):
        return 3
    return {"configs": 0, "utils": 0, "dataset": 1, "backbone": 1, "multi_label": 2, "run": 4}.get(top)


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_modules():
    """{module name: path} of run.py, configs.py and every module of the library packages."""
    paths = [ROOT / "run.py", ROOT / "configs.py"]
    for package in LIBRARY_PACKAGES:
        paths += sorted((ROOT / package).rglob("*.py"))
    return {module_name(path): path for path in paths}


def imports_of(path, modules):
    """The project modules that `path` imports (the deepest existing module named by each import)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from a.b import c` names module a.b.c when c is a module, else a name inside a.b
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                     for alias in node.names]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def import_graph():
    modules = project_modules()
    return {name: imports_of(path, modules) - {name} for name, path in modules.items()}


def test_layer_function_knows_every_module():
    assert all(layer(name) is not None for name in project_modules())


def test_no_upward_import():
    upward = [f"{name} (layer {layer(name)}) imports {target} (layer {layer(target)})"
              for name, targets in import_graph().items() for target in targets if layer(target) > layer(name)]
    assert upward == []


def test_no_import_circle():
    graph = import_graph()
    # A package's __init__ importing its own submodules is how a package shows its parts; the
    # submodules importing a sibling through the package is a real dependency on the package.
    circles = [cycle for cycle in strongly_connected(graph) if len(cycle) > 1]
    assert circles == []


def strongly_connected(graph):
    """Tarjan's algorithm: the strongly connected components of a {node: set of nodes} graph."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
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


def test_circle_finder_finds_a_circle():
    assert [c for c in strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) if len(c) > 1] == [
        ["a", "b", "c"]]


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


@pytest.mark.parametrize("name", sorted(library_modules()))
def test_library_code_does_not_read_the_whole_config(name):
    """Only the tasks read the Config; library code takes the values it needs (utils/config.py loads it)."""
    if name in ("configs", "utils.config", "utils.config_rules", "utils.settings"):
        return  # they load and check the config, or read its types and defaults
    tree = ast.parse(library_modules()[name].read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name != "from_config":
            # Keras's from_config(cls, config) receives a layer's own config dict, not the run's
            found += [f"{node.name}(config) (line {node.lineno})" for arg in node.args.args + node.args.kwonlyargs
                      if arg.arg == "config"]
        elif isinstance(node, ast.ImportFrom) and node.module == "configs":
            found.append(f"imports configs (line {node.lineno})")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
              and len(node.args) == 3 and isinstance(node.args[0], ast.Name)
              and node.args[0].id in ("config", "settings")):
            found.append(f"getattr({node.args[0].id}, ..., default) (line {node.lineno})")
    assert found == []


def test_config_page_is_at_most_100_columns():
    long = [number for number, line in enumerate((ROOT / "configs.py").read_text().splitlines(), 1)
            if len(line) > 100]
    assert long == []
