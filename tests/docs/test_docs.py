"""The documentation is executed: every bash / console / python block and every YAML scenario of
README.md and docs/*.md runs (the convention is in ``docblocks.py`` and docs/contributing.md).

Blocks of one file run in document order in one scratch folder (a later block may use what an
earlier one wrote, such as ``my.yaml`` or a profile), with the repository's files linked in,
``../shared`` pointing at the shared data, and HOME and the profile store inside it. The
``llmqueue`` and ``python`` on PATH are this checkout's (``python -m llmqueue`` with
``PYTHONPATH=src``), whatever is installed.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from docblocks import Block, blocks, doc_files

REPO = Path(__file__).resolve().parents[2]
ALL = [b for f in doc_files(REPO) for b in blocks(f)]
RUNNABLE = [b for b in ALL if b.runs]
#: at most this many blocks may be skipped (each needs a reason); keep it small
MAX_SKIPS = 4
#: simulated seconds for a YAML scenario of the docs (a smoke run: it loads and simulates)
YAML_HORIZON_S = 60
TIMEOUT_S = 240

PIP_STANDIN = '''
"""Stands in for pip in the doc tests: installs nothing; checks that the extras named exist."""
import re, sys
from pathlib import Path
text = Path({pyproject!r}).read_text()
section = text.split("[project.optional-dependencies]", 1)[-1].split("\\n[", 1)[0]
extras = set(re.findall(r"^([A-Za-z0-9_.-]+)\\s*=", section, re.M))   # tomllib is Python 3.11+
args = sys.argv[1:]
if not args or args[0] != "install":
    sys.exit(f"pip stand-in: only 'pip install' is documented, got {{args}}")
for a in args[1:]:
    m = re.fullmatch(r"(?:\\.|llmqueue)\\[([^\\]]*)\\]", a.strip("'\\""))
    for extra in (m.group(1).split(",") if m else []):
        if extra.strip() not in extras:
            sys.exit(f"pip stand-in: no extra {{extra!r}} in pyproject.toml (extras: {{sorted(extras)}})")
'''


def _shims(bin_dir: Path) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    py = shlex.quote(sys.executable)
    for name, body in (("llmqueue", f'exec {py} -m llmqueue "$@"'), ("python", f'exec {py} "$@"'),
                       ("python3", f'exec {py} "$@"'),
                       ("pip", f'exec {py} {shlex.quote(str(bin_dir / "pip_standin.py"))} "$@"')):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    (bin_dir / "pip_standin.py").write_text(PIP_STANDIN.format(pyproject=str(REPO / "pyproject.toml")))


@pytest.fixture(scope="session")
def scratch(tmp_path_factory):
    """``scratch(doc_file) -> (folder, env)``: one scratch copy of the repository root per doc file."""
    made: dict[Path, tuple[Path, dict]] = {}

    def get(doc: Path) -> tuple[Path, dict]:
        if doc not in made:
            top = tmp_path_factory.mktemp(doc.stem)
            work = top / "repo"
            work.mkdir()
            for entry in REPO.iterdir():
                if entry.name in ("src", "docs", "benchmarks", "tests", "README.md", "pyproject.toml"):
                    (work / entry.name).symlink_to(entry)
            shared = REPO.parent / "shared"
            if shared.is_dir():
                (top / "shared").symlink_to(shared)
            _shims(top / "bin")
            env = {**os.environ, "PATH": f"{top / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
                   "PYTHONPATH": str(REPO / "src"), "HOME": str(top / "home"),
                   "LLMQUEUE_PROFILES": str(top / "home" / "profiles"), "MPLBACKEND": "Agg",
                   "COLUMNS": "100", "PYTHONHASHSEED": "0"}
            made[doc] = (work, env)
        return made[doc]

    return get


def _run(args: list[str], work: Path, env: dict, block: Block) -> None:
    r = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert r.returncode == 0, (f"{block.id} failed (exit {r.returncode}):\n{block.text}\n--- stdout\n"
                               f"{r.stdout[-3000:]}\n--- stderr\n{r.stderr[-3000:]}")


def _missing(block: Block) -> str | None:
    """What this environment lacks for the block: the shared traces, or torch for the real engine."""
    if "../shared/" in block.text and not (REPO.parent / "shared").is_dir():
        return "the shared traces (../shared) are not next to the repository"
    if any(k in block.text for k in ("--engine real", "llmqueue profile", "model: profile")) \
            and importlib.util.find_spec("torch") is None:
        return "torch is not installed (the real extra)"
    return None


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: f"{b.id}-{b.kind}")
def test_doc_block_runs(block: Block, scratch):
    if block.skip:
        pytest.skip(f"{block.id}: {block.skip}")
    if (lack := _missing(block)) is not None:
        pytest.skip(f"{block.id}: {lack}")
    work, env = scratch(block.file)
    if block.kind in ("bash", "console"):
        _run(["bash", "-c", "set -euo pipefail\n" + block.script()], work, env, block)
    elif block.kind == "python":
        _run([sys.executable, "-c", block.text], work, env, block)
    else:
        path = work / f"{block.file.stem}_{block.line}.yaml"
        path.write_text(block.text)
        _run([sys.executable, "-m", "llmqueue", "simulate", str(path), "--horizon", str(YAML_HORIZON_S)],
             work, env, block)


def test_every_doc_is_read():
    names = {b.file.name for b in ALL}
    assert "README.md" in names and {"scenarios.md", "networks.md", "lab.md"} <= names
    kinds = {b.kind for b in RUNNABLE}
    assert {"bash", "yaml", "python"} <= kinds


def test_skips_are_rare_and_say_why():
    skipped = [b for b in RUNNABLE if b.skip]
    assert len(skipped) <= MAX_SKIPS, [f"{b.id}: {b.skip}" for b in skipped]
    assert all(b.skip != "no reason given" for b in skipped), [b.id for b in skipped]


def test_extraction(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text(textwrap.dedent("""\
        ```bash
        llmqueue scenarios
        ```
        <!-- doctest: skip needs a GPU -->

        ```console
        $ llmqueue --version \\
            --help
        llmqueue 0.1.0
        $ echo hi
        hi
        ```
        ```text
        not run
        ```
          ```yaml
          seed: 1
          ```
        """))
    b = blocks(doc)
    assert [x.kind for x in b] == ["bash", "console", "text", "yaml"]
    assert [x.line for x in b] == [1, 6, 13, 16]
    assert b[0].skip is None and b[1].skip == "needs a GPU"
    assert b[1].script() == "llmqueue --version \\\n    --help\necho hi\n"
    assert b[3].text == "seed: 1\n" and not b[2].runs


def test_pip_standin_checks_the_extras(tmp_path):
    _shims(tmp_path)
    pip = str(tmp_path / "pip")
    ok = subprocess.run([pip, "install", "-e", ".[real]"], capture_output=True, text=True)
    bad = subprocess.run([pip, "install", "-e", ".[nope]"], capture_output=True, text=True)
    assert ok.returncode == 0 and bad.returncode != 0 and "no extra 'nope'" in bad.stderr
