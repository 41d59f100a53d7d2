"""The lab and the experiments are a library: the commands (llmqueue.cli) import them, never the reverse.

The library modules import neither typer nor rich at module level (the terminal toolkit belongs
to the command modules), and no library module imports a command module, even lazily.
"""

import ast
import subprocess
import sys
from pathlib import Path

import llmqueue

PKG = Path(llmqueue.__file__).parent


def _modules():
    for folder in ("lab", "experiments"):
        for path in sorted((PKG / folder).rglob("*.py")):
            parts = path.relative_to(PKG.parent).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, path


def _imported(name: str, path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports, at any level of the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
    return out


def test_library_never_imports_command_modules():
    for name, path in _modules():
        bad = {m for m in _imported(name, path) if m == "llmqueue.cli" or m.startswith("llmqueue.cli.")}
        assert not bad, f"{name} imports command module(s) {sorted(bad)}"


def test_library_loads_without_typer_or_rich():
    lib = [n for n, _ in _modules()]
    code = ("import importlib, sys\n"
            f"for m in {lib!r}: importlib.import_module(m)\n"
            "print(sorted(m for m in ('typer', 'rich') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
