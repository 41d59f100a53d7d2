"""The tests find data relative to the repository, what the documented commands write is ignored
by git, and the guides name every policy of the registry."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from llmqueue.policies import policy_names

REPO = Path(__file__).resolve().parents[2]
#: a quoted absolute path into the machine's shared data or work folders
ABSOLUTE = re.compile(r"""["'](/work/|/[\w./-]*shared/traces)""")


def test_tests_use_no_absolute_data_paths():
    bad = [f"{f.relative_to(REPO)}:{i}: {line.strip()}"
           for f in sorted((REPO / "tests").rglob("*.py")) if f != Path(__file__).resolve()
           for i, line in enumerate(f.read_text().splitlines(), 1) if ABSOLUTE.search(line)]
    assert not bad, "use the repo_root / shared_traces fixtures of tests/conftest.py:\n" + "\n".join(bad)


def test_the_pattern_catches_what_it_should():
    assert ABSOLUTE.search('read_trace("/work/shared/traces/x.csv")')
    assert ABSOLUTE.search("Path('/data/shared/traces')")
    assert not ABSOLUTE.search('shared_traces / "AzureLLMInferenceTrace_code.csv"')


@pytest.mark.parametrize("path", ["runs/fig1/summary.json", "out/x.png", "sweep-fig1/points.csv",
                                  "reproduce-fig8/result.json", "my.yaml"])
def test_command_outputs_are_ignored_by_git(path):
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    r = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO)
    assert r.returncode == 0, f"{path} is not ignored by .gitignore"


def test_scenario_guide_lists_every_policy():
    text = (REPO / "docs" / "scenarios.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `policy` |"))
    missing = [p for p in policy_names() if not re.search(rf"(?<![\w-]){re.escape(p)}(?![\w-])", row)]
    assert not missing, f"docs/scenarios.md's policy row lacks {missing}"


def test_readme_lists_every_experiment():
    from llmqueue.experiments import EXPERIMENTS
    text = " ".join((REPO / "README.md").read_text().split())
    missing = [e.name for e in EXPERIMENTS if f"`{e.name}`" not in text]
    assert not missing, f"README.md's list of reproduce experiments lacks {missing}"
