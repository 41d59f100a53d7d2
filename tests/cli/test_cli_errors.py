"""Every command's failure is one line ``error: <message>`` on stderr, exit status 2, no traceback,
and the message is printed as text, never as rich markup (a name like ``nope[/]x`` used to end
in a MarkupError traceback)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from llmqueue.cli import app

MARKUP = "nope[/]x"


def one_error_line(args: list[str]) -> str:
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2, (args, r.output, r.exception)
    assert "Traceback" not in r.output and r.stdout == "", (args, r.output)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (args, r.stderr)
    return lines[0]


def test_markup_in_a_scenario_name_is_printed_as_text():
    line = one_error_line(["simulate", MARKUP])
    assert f"{MARKUP}: no such scenario file" in line


def test_markup_in_the_message_of_a_nested_error(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("engine: {policy: sarathi, token_budget: 64}\nworkload: {arrival: {process: poisson, rate: 1}, "
                 "prompt_tokens: {dist: fixed, value: 4}, decode_tokens: {dist: fixed, value: 4}, "
                 "num_requests: 5}\n")
    line = one_error_line(["simulate", str(p), "--policy", "[bold]x[/]"])
    assert "unknown policy '[bold]x[/]'" in line


def test_the_installed_entry_point_prints_no_traceback():
    """The console script's code path (main(), not CliRunner): stderr is the error line only."""
    r = subprocess.run([sys.executable, "-m", "llmqueue", "simulate", MARKUP], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [f"error: {MARKUP}: no such scenario file (built-in scenarios: "
                                             + r.stderr.split("(built-in scenarios: ", 1)[1].strip()]


@pytest.fixture
def run_folder(tmp_path):
    (tmp_path / "notarun").mkdir()
    return tmp_path / "notarun"


def command_failures(tmp_path, run_folder):
    """One bad invocation of every command that can fail."""
    missing = str(tmp_path / "missing[/]dir")
    return {
        "simulate": ["simulate", MARKUP],
        "capacity": ["capacity", MARKUP],
        "check-policy": ["check-policy", "[/]nope"],
        "fluid": ["fluid", "fig1"],
        "serve-bench": ["serve-bench", MARKUP, "--engine", "sim"],
        "serve-bench engine": ["serve-bench", "fig1", "--engine", "[red]gpu"],
        "profile": ["profile", "--prefill", "a[/]b", "--model", "tiny"],
        "compare": ["compare", missing, missing],
        "kv-capacity": ["kv-capacity", "--model", "gpt[/]9"],
        "trace-stats": ["trace-stats", missing],
        "plan": ["plan", "--slo", "p99_ttft_ms=1", "--quiet", MARKUP],
        "sweep": ["sweep", MARKUP, "--backend", "serial", "--quiet"],
        "reproduce": ["reproduce", "[/]nope"],
        "report": ["report", str(run_folder)],
    }


def test_every_command_fails_with_one_line(tmp_path, run_folder):
    cases = command_failures(tmp_path, run_folder)
    registered = {c.name for c in app.registered_commands} | {"sweep", "reproduce", "report"}
    assert {args[0] for args in cases.values()} | {"scenarios"} == registered
    for name, args in cases.items():
        line = one_error_line(args)
        assert "[/]" not in args[-1] or "[/]" in line or name in ("profile",), (name, line)


def test_network_capacity_output_does_not_depend_on_the_hash_seed():
    """The cycle named in the verdict used to follow set order (``e1 -> e2`` or ``e2 -> e1`` by run)."""
    import os
    outs = set()
    for seed in ("1", "2", "3", "4", "5"):
        r = subprocess.run([sys.executable, "-m", "llmqueue", "capacity", "rybko-stolyar"], capture_output=True,
                           text=True, timeout=120, env={**os.environ, "PYTHONHASHSEED": seed})
        assert r.returncode == 0, r.stderr
        outs.add(r.stdout)
    assert len(outs) == 1 and "cycle (e1 -> e2 -> e1)" in outs.pop()
