"""Start-up stays cheap: ``import llmqueue`` and building the command line for ``--help`` import
none of the heavy libraries (they cost seconds; each command imports what it runs). Not a timed
test: it checks ``sys.modules`` in a fresh interpreter. Also ``--version`` and ``python -m llmqueue``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from importlib.metadata import version

import llmqueue

HEAVY = ("pandas", "scipy", "networkx", "hypothesis", "matplotlib", "pyarrow", "torch")


def loaded_after(code: str) -> list[str]:
    probe = textwrap.dedent(code) + textwrap.dedent(f"""
        import json, sys
        print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_llmqueue_is_light():
    assert loaded_after("import llmqueue; llmqueue.__version__") == []


def test_help_is_light():
    assert loaded_after("""
        from typer.testing import CliRunner
        from llmqueue.cli import app
        r = CliRunner().invoke(app, ["--help"])
        assert r.exit_code == 0 and "simulate" in r.output and "sweep" in r.output, r.output
        for cmd in ("simulate", "capacity", "serve-bench", "sweep", "reproduce"):
            assert CliRunner().invoke(app, [cmd, "--help"]).exit_code == 0, cmd
    """) == []


def test_lazy_names_still_resolve():
    from llmqueue import SarathiServe, check_work_conserving, simulate
    assert SarathiServe is llmqueue.policies.SarathiServe and callable(simulate) and callable(check_work_conserving)
    assert "simulate" in dir(llmqueue)


def test_version_from_the_package_metadata():
    assert llmqueue.__version__ == version("llmqueue")
    out = subprocess.run([sys.executable, "-m", "llmqueue", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"llmqueue {llmqueue.__version__}"


def test_ships_py_typed():
    from importlib.resources import files
    assert files("llmqueue").joinpath("py.typed").is_file()
