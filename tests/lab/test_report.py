"""``llmqueue report``: one self-contained HTML page, and it renders in headless Chromium."""

import base64
import io
import re
import shutil
import subprocess
import tempfile

import pytest
from PIL import Image
from typer.testing import CliRunner

from llmqueue.cli import app
from llmqueue.experiments import run_experiment
from llmqueue.lab.backends import make_backend
from llmqueue.lab.bisect import BisectSpec
from llmqueue.lab.spec import make_spec
from llmqueue.lab.sweep import run_sweep
from llmqueue.lab.sweep_plots import sweep_figures


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    sweep = root / "sweep"
    spec = make_spec("theorem2", rates=[0.5, 1.3], policies=["sarathi"], seeds=[1], horizon_s=60.0,
                     bisect=BisectSpec(low=0.5, high=1.5, resolution=0.5, replications=1, escalations=0))
    o = run_sweep(spec, sweep, make_backend("serial"))
    sweep_figures(o, spec, sweep)
    repro = root / "fig8"
    run_experiment("fig8", repro)
    run = root / "run"
    res = CliRunner().invoke(app, ["simulate", "theorem2", "--duration", "120", "--out", str(run)])
    assert res.exit_code == 0, res.output
    plan = root / "plan"
    res = CliRunner().invoke(app, ["plan", "fig1", "--slo", "p99_ttft_ms=1000", "--slo", "p99_tpot_ms=160", "--grid",
                                   "policy=sarathi,vllm", "--grid", "token_budget=256,512", "--requests", "300",
                                   "--refine", "2", "--refine-requests", "1200", "--workers", "1", "--quiet",
                                   "--out", str(plan)])
    assert res.exit_code == 0, res.output
    return {"sweep": sweep, "reproduce": repro, "run": run, "plan": plan}


def render(folder):
    res = CliRunner().invoke(app, ["report", str(folder)])
    assert res.exit_code == 0, res.output
    return (folder / "report.html").read_text()


def check_self_contained(page):
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"(src|href)=\"(https?:|file:|//)", page), "the page must not load anything"
    assert "<script" not in page
    imgs = re.findall(r"<img src=\"([^\"]+)\"", page)
    assert imgs
    for uri in imgs:
        assert uri.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as im:
            assert im.format == "PNG"


def test_sweep_report(folders):
    page = render(folders["sweep"])
    check_self_contained(page)
    for text in ("Answer: up to which rate", "Sarathi-Serve (token budget 512)", "lambda*", "Verdicts (seeds pooled)",
                 "verdict-unstable", "MSER-5", "Scenario", "batch_time", "Every point"):
        assert text in page, text


def test_reproduce_and_run_reports(folders):
    page = render(folders["reproduce"])
    check_self_contained(page)
    assert "Reproduction: fig8" in page and "reproduce the paper" in page
    page = render(folders["run"])
    check_self_contained(page)
    assert "Run: theorem2" in page and "Verdict" in page and "the backlog grows at" in page


def test_plan_report(folders):
    page = render(folders["plan"])
    check_self_contained(page)
    for text in ("Deployment plan", "best: <b>sarathi", "p99_ttft_ms &lt;= 1000 ms", "refined", "screened",
                 "runs of 300 requests", "refined: runs of 1,200 (about", "$ / M tokens", "vllm b256"):
        assert text in page, text
    # plan.html is the same section, with the plot as a file beside it
    own = (folders["plan"] / "plan.html").read_text()
    assert 'src="pareto.png"' in own and "best: <b>sarathi" in own


def test_not_a_report_folder(tmp_path):
    res = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 2 and "is not a sweep folder" in res.output
    res = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "no such folder" in res.output


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (Debian: apt-get install chromium); "
                                              "the report's rendering check is skipped")
def test_report_renders_in_headless_chromium(folders, tmp_path):
    page = folders["sweep"] / "report.html"
    if not page.exists():
        render(folders["sweep"])
    shot = tmp_path / "shot.png"
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             "--enable-logging=stderr", "--v=0", "--window-size=1280,2000", f"--screenshot={shot}",
             page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-2000:]
    console = [line for line in log.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    with Image.open(shot) as im:
        assert im.size == (1280, 2000)
        colours = im.convert("RGB").resize((64, 100)).getcolors(64 * 100)
        assert colours is not None and len(colours) > 20, "the page rendered blank"
