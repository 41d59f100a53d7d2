"""The real engine's commands: profile -> serve-bench (real and sim) -> compare, their errors, and
that the command module works without torch (saying how to install it)."""

import json
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from llmqueue.cli import app

SCENARIO = """
engine:
  policy: sarathi
  token_budget: 32
workload:
  arrival: {process: poisson, rate: 60}
  prompt_tokens: {dist: uniform, low: 4, high: 24}
  decode_tokens: {dist: fixed, value: 4}
  duration_s: 0.5
seed: 2
"""


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_commands_work_without_torch_and_say_how_to_install_it(tmp_path):
    code = textwrap.dedent(f"""
        import importlib.abc, sys

        class NoTorch(importlib.abc.MetaPathFinder):   # as if torch were not installed
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] == "torch":
                    raise ModuleNotFoundError("No module named " + repr(name), name=name)

        sys.meta_path.insert(0, NoTorch())
        from typer.testing import CliRunner
        from llmqueue.cli import app
        r = CliRunner().invoke(app, ["serve-bench", "fig1"])
        print(r.exit_code, r.output.replace("\\n", " "))
        r = CliRunner().invoke(app, ["profile", "--model", "tiny"])
        print(r.exit_code, r.output.replace("\\n", " "))
        r = CliRunner().invoke(app, ["compare", "{tmp_path}", "{tmp_path}"])
        print(r.exit_code, r.output.replace("\\n", " "))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 3, out.stderr
    for line in lines[:2]:
        assert line.startswith("2 ") and 'pip install -e ".[real]"' in " ".join(line.split())
    assert lines[2].startswith("2 ") and "not a run folder" in lines[2]


def test_profile_serve_compare_end_to_end(tmp_path):
    pytest.importorskip("torch")
    pdir = tmp_path / "profiles"
    r = invoke("profile", "--model", "tiny", "--name", "t", "--profiles-dir", pdir, "--repeats", "2",
               "--prefill", "0,8,32", "--decode", "0,2,8", "--context", "8,32", "--samples", tmp_path / "s.csv")
    assert r.exit_code == 0, r.output
    assert "R^2" in r.output and (pdir / "t.yaml").is_file() and (tmp_path / "s.csv").is_file()
    sc = tmp_path / "sc.yaml"
    sc.write_text(SCENARIO)
    r = invoke("serve-bench", sc, "--model", "tiny", "--profile", "t", "--profiles-dir", pdir,
               "--out", tmp_path / "real")
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "real" / "summary.json").read_text())
    assert summary["engine"] == "real" and summary["tokens_conserved"] and summary["threads"] == 1
    assert summary["scenario"]["engine"]["batch_time"]["model"] == "profile"
    assert (tmp_path / "real" / "iterations_real.csv").is_file()
    r = invoke("serve-bench", sc, "--engine", "sim", "--profile", "t", "--profiles-dir", pdir,
               "--out", tmp_path / "sim")
    assert r.exit_code == 0, r.output
    r = invoke("compare", tmp_path / "sim", tmp_path / "real", "--plot", tmp_path / "c.png",
               "--profile", "t", "--profiles-dir", pdir)
    assert r.exit_code == 0, r.output
    assert "token_throughput" in r.output and (tmp_path / "c.png").stat().st_size > 10_000
    r = invoke("compare", tmp_path / "sim", tmp_path / "real", "--json")
    assert json.loads(r.output)["metrics"]["completed"]["rel_diff"] == 0.0


@pytest.mark.parametrize("args,message", [
    (["serve-bench", "fig1", "--engine", "gpu"], "--engine must be real or sim"),
    (["serve-bench", "fig1", "--model", "huge", "--num-requests", "1"], "neither a preset"),
    (["serve-bench", "fig1", "--engine", "sim", "--profile", "nope", "--profiles-dir", "{tmp}"],
     "no hardware profile 'nope'"),
    (["profile", "--model", "tiny", "--prefill", "a,b"], "--prefill must be comma-separated integers"),
    (["profile", "--model", "tiny", "--repeats", "0"], "repeats must be >= 1"),
    (["profile", "--model", "tiny", "--threads", "0"], "threads must be >= 1"),
    (["compare", "{tmp}", "{tmp}"], "not a run folder"),
])
def test_bad_input_is_one_clear_error(tmp_path, args, message):
    if args[0] != "compare" and "--engine" not in args and "--profile" not in args:
        pytest.importorskip("torch")
    r = invoke(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split()) and "Traceback" not in r.output


def test_cuda_without_a_gpu_is_a_clear_error():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    r = invoke("profile", "--model", "tiny", "--device", "cuda")
    assert r.exit_code == 2 and "sees no CUDA GPU" in r.output
