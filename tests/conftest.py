"""Shared fixtures for the whole test tree.

The tests mirror the package: ``tests/<part>/`` holds the tests of ``src/llmqueue/<part>``, and
the top level only whole-package tests (the import layers). The folders have no ``__init__.py``
and pytest runs in its default import mode, so every test file's basename is unique across the
tree, and a helper module next to its tests imports by its plain name (pytest puts a test file's
folder on ``sys.path`` before importing it): ``tests/sim/test_reference_agreement.py`` does
``from reference_sim import reference_simulate`` for the naive reference simulator in
``tests/sim/reference_sim.py``.

Paths go through the fixtures below, never through a test file's own location, so that moving a
test does not change what it reads.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# the shared data (the Azure LLM inference traces) live next to the repository, not in it
SHARED_TRACES = REPO_ROOT.parent / "shared" / "traces"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's root folder (README.md, docs/, benchmarks/, src/)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_traces() -> Path:
    """The shared trace folder ``../shared/traces`` relative to the repository; skips when absent."""
    if not SHARED_TRACES.is_dir():
        pytest.skip(f"shared Azure traces not present (looked in {SHARED_TRACES})")
    return SHARED_TRACES
