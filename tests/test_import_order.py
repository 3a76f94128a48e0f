"""The layer order is a rule: no import cycle, and no module imports from a later stage.

The stages follow the data (docs/design.md states the same order): the base modules, then
sources -> TFRecords (``data``), the dataset (``input``), the networks (``models``), measuring a
model (``evaluation``: the metrics, the eval pass, predict, export), the training loop, which
evaluates as it goes (``training``), the studies built on it (``experiments``), and the
command-line layer (``flags``, then ``cli``). Imports inside functions count as well, and so
does a package's ``__init__`` that importing one of its modules runs. (``models.MODELS``
imports each architecture's module by name with importlib, inside its own package: no edge.)
"""

from __future__ import annotations

import ast
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, "tfgender")

# Earlier stages never import later ones. The first holds the top-level modules.
STAGES = (
    ("", "errors", "files", "choices", "config", "quiet", "progress", "devices"),
    ("data",),
    ("input",),
    ("models",),
    ("evaluation",),
    ("training",),
    ("experiments",),
    ("flags",),
    ("cli",),
)


def _modules() -> dict[str, str]:
    """``{dotted module name: path}`` for every module of the package."""
    found = {}
    for root, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                dotted = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
                found[dotted.removesuffix(".__init__")] = path
    return found


def _imports(name: str, path: str, modules: dict[str, str]) -> set[str]:
    """The package's modules that ``name`` imports, anywhere in its file."""
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            # ``from tfgender.data import convert`` imports the module tfgender.data.convert.
            out |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names}
    found = {m for m in out if m in modules}
    # Importing tfgender.models.head from another package runs tfgender/models/__init__.py
    # first: an edge to each package a module is in, but the importer's own.
    for module in list(found):
        parts = module.split(".")
        for end in range(2, len(parts)):
            parent = ".".join(parts[:end])
            if parent in modules and not (name == parent or name.startswith(parent + ".")):
                found.add(parent)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _room(module: str) -> str:
    """The package (``data``, ``training``, ...) or top-level module a module belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _stage(module: str) -> int:
    room = _room(module)
    return next(i for i, stage in enumerate(STAGES) if room in stage)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_package_and_top_level_module_has_a_stage():
    rooms = {_room(m) for m in _modules()}
    staged = {room for stage in STAGES for room in stage}
    assert rooms <= staged, f"place these in STAGES (and docs/design.md): {rooms - staged}"


def test_no_module_imports_from_a_later_stage():
    upward = [f"{m} -> {d}" for m, deps in sorted(_graph().items()) for d in sorted(deps)
              if _stage(d) > _stage(m)]
    assert not upward, "imports from a later stage:\n" + "\n".join(upward)


def test_no_import_cycle_between_modules():
    assert not _cycles(_graph())


def test_no_import_cycle_between_packages():
    rooms: dict[str, set[str]] = {}
    for module, deps in _graph().items():
        rooms.setdefault(_room(module), set()).update(
            _room(d) for d in deps if _room(d) != _room(module))
    assert not _cycles(rooms)


def test_the_rule_sees_a_cycle_and_an_upward_import():
    """The checks above can fail: a made-up graph with both faults."""
    graph = {"tfgender.data.a": {"tfgender.data.b"}, "tfgender.data.b": {"tfgender.data.a"},
             "tfgender.input.c": {"tfgender.training.d"}, "tfgender.training.d": set()}
    assert _cycles(graph) == [["tfgender.data.a", "tfgender.data.b"]]
    assert _stage("tfgender.training.d") > _stage("tfgender.input.c")
