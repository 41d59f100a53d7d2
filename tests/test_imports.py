"""The import graph of ``src/llmqueue`` has no cycles and follows the layers of the package.

What counts as an import: every ``import`` and ``from ... import`` statement anywhere in a module,
at the top, inside functions (lazy imports still make a dependency), and under
``if TYPE_CHECKING:`` (a type named in an annotation is a dependency too; name it structurally
with a ``Protocol`` instead of importing it from above). Only the source is parsed (``ast``): no
module is imported, so the check is the same with or without the optional dependencies. Imports
of names spelled in strings (``importlib.import_module("...")``) are not seen; there should be none.

The checks:

* the layers: a first-level subpackage or module may import only from its own layer or the
  layers below it (:data:`LAYERS`, bottom first);
* no cycles between modules (so, with the layers, none between subpackages either);
* no module imports another module's private (``_name``) helpers, and no module is imported by a
  name spelled in a string.

The ``ALLOWED_*`` tables name what breaks these rules today and is being removed by the work in
flight (issue 12, phase 1): each entry says who removes it. They must shrink, never grow (a test
fails when an entry is no longer needed).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "llmqueue"

#: bottom first. A layer may import from itself and from any layer below it. ``__init__`` is the
#: package facade (lazy re-exports and ``__version__``); ``cli`` is the command line over all of it.
LAYERS: list[set[str]] = [
    {"errors"},
    {"engine"},                  # the clock-free core: requests, state, plans, batch time
    {"workload"},
    {"policies"},
    {"analysis"},                # theory only: capacity, lambda*, the k_max region
    {"memory"},
    {"sim"},                     # kernel, drivers, records, run metrics, fast path
    {"network"},
    {"real"},
    {"config"},                  # the one scenario schema and loader
    {"run"},                     # the one run path of a single-engine scenario
    {"lab"},
    {"experiments"},
    {"__init__"},
    {"cli"},
    {"__main__"},
]

#: (importer, imported) first-level edges that go up a layer today; who removes each one.
ALLOWED_EDGES: dict[tuple[str, str], str] = {
}

#: module-to-module imports that close a cycle today; who removes each one.
ALLOWED_MODULE_CYCLE_EDGES: dict[tuple[str, str], str] = {
}


def modules() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package)."""
    out = {}
    for f in sorted(ROOT.rglob("*.py")):
        parts = list(f.relative_to(ROOT.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (f, is_pkg)
    return out


def imported_modules(name: str, path: Path, is_pkg: bool, known: dict) -> set[str]:
    """The llmqueue modules that ``name`` imports: the most specific module each import names."""
    package = name if is_pkg else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # ``from pkg import sub`` imports the submodule; ``from pkg import name`` the package
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported_modules(name, f, is_pkg, known) for name, (f, is_pkg) in known.items()}


def first_level(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_of(part: str) -> int:
    for i, layer in enumerate(LAYERS):
        if part in layer:
            return i
    raise AssertionError(f"llmqueue.{part} is in no layer: add it to LAYERS in {__file__}")


def test_every_subpackage_has_a_layer():
    for module in graph():
        layer_of(first_level(module))


def test_imports_follow_the_layers():
    upward = {}
    for module, targets in graph().items():
        src = first_level(module)
        for target in targets:
            dst = first_level(target)
            if layer_of(dst) > layer_of(src) and (src, dst) not in ALLOWED_EDGES:
                upward.setdefault((src, dst), []).append(f"{module} -> {target}")
    assert not upward, "imports from a higher layer:\n" + "\n".join(
        f"  {a} -> {b}: {', '.join(sorted(v))}" for (a, b), v in sorted(upward.items()))


def test_the_allow_list_is_still_needed():
    """An allowed edge that no longer occurs must leave the list (it only shrinks)."""
    edges = {(first_level(m), first_level(t)) for m, ts in graph().items() for t in ts}
    assert not set(ALLOWED_EDGES) - edges, set(ALLOWED_EDGES) - edges
    module_edges = {(m, t) for m, ts in graph().items() for t in ts}
    assert not set(ALLOWED_MODULE_CYCLE_EDGES) - module_edges, set(ALLOWED_MODULE_CYCLE_EDGES) - module_edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path [a, b, ..., a], or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    for start in sorted(edges):
        if state.get(start):
            continue
        stack = [(start, iter(sorted(edges[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                state[node] = 2
            elif state.get(child) == 1:
                return path[path.index(child):] + [child]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(edges.get(child, ())))))
    return None


def test_no_module_import_cycles():
    edges = {m: {t for t in ts if (m, t) not in ALLOWED_MODULE_CYCLE_EDGES} for m, ts in graph().items()}
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_checker_sees_a_cycle_and_an_upward_import():
    """The checks can fail: a made-up graph with a cycle, and one upward import."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert layer_of("engine") < layer_of("sim") < layer_of("cli")


#: files that name llmqueue modules in strings to import them, and who removes them
ALLOWED_IMPORT_STRINGS: dict[str, str] = {
}


def test_no_modules_imported_by_name_strings():
    """``importlib.import_module("llmqueue.x")`` hides a dependency from the checks above."""
    known = modules()
    found = set()
    for path, _ in known.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "." in node.value \
                    and node.value in known:
                found.add(str(path.relative_to(ROOT)))
    assert found == set(ALLOWED_IMPORT_STRINGS), found


#: (importer, private name) pairs that exist today, and who removes them
ALLOWED_PRIVATE_IMPORTS: dict[tuple[str, str], str] = {
    ("llmqueue.workload.workload", "_count"): "perf: the vectorised workload replaces it",
}


def test_no_private_names_imported_from_other_modules():
    """A module's ``_name`` is its own: no command (or anything else) imports another's private helpers."""
    found = set()
    for name, (path, _) in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("llmqueue")):
                found |= {(name, a.name) for a in node.names if a.name.startswith("_") and not a.name.startswith("__")}
    assert found <= set(ALLOWED_PRIVATE_IMPORTS), found - set(ALLOWED_PRIVATE_IMPORTS)
    assert not set(ALLOWED_PRIVATE_IMPORTS) - found, set(ALLOWED_PRIVATE_IMPORTS) - found
    assert not any(importer.startswith("llmqueue.cli") for importer, _ in found)
