"""``llmqueue serve-bench``, ``llmqueue profile`` and ``llmqueue compare``: the real engine's commands.

This module imports without torch (the app registers it unconditionally); each command that needs
torch imports it when it runs and, if it is missing, says how to install it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from . import options as opt
from .output import console, fail, print_json, print_summary
from .progress import progress_bar


def _torch_or_fail() -> None:
    from ..real import TORCH_HINT
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError:
        fail(TORCH_HINT)


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        fail(f"{what} must be comma-separated integers, got {text!r}")
    if not vals:
        fail(f"{what} is empty")
    return vals


_model_opt = typer.Option("small", "--model", help="Model preset (tiny, small, base, llama-250m) or a "
                          "local Llama checkpoint folder (config.json + *.safetensors).")
_weights_seed = typer.Option(0, "--weights-seed", help="Seed of the random weights (presets).")
_device_opt = typer.Option("auto", "--device", help="auto (cuda if torch sees a GPU, else cpu), cpu, cuda, cuda:N.")
_dtype_opt = typer.Option("auto", "--dtype",
                          help="auto (bfloat16 on cuda, float32 on cpu), float32, bfloat16, float16.")
_threads_opt = typer.Option(None, "--threads", help="CPU threads for torch. Default: the profile's, else 1 "
                            "(one thread keeps timings steady on a shared machine).")
_block_opt = typer.Option(16, "--block-size", help="KV-cache block size in tokens.")
_pdir_opt = typer.Option(None, "--profiles-dir", help="Where profiles are stored (default $LLMQUEUE_PROFILES "
                         "or ~/.llmqueue/profiles).")


def _setup_torch(device: str, dtype: str, threads: Optional[int]):
    from ..real.device import resolve_device, resolve_dtype, set_threads
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    n = set_threads(threads if threads is not None else (1 if dev.type == "cpu" else None))
    return dev, dt, n


def serve_bench(
    scenario: Optional[str] = typer.Argument(None, help=opt.SCENARIO_HELP),
    engine: str = typer.Option("real", "--engine", help="real (PyTorch, wall clock) or sim (the simulator)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write requests.csv, iterations.csv, summary.json here."),
    model: str = _model_opt, weights_seed: int = _weights_seed, device: str = _device_opt,
    dtype: str = _dtype_opt, threads: Optional[int] = _threads_opt, block_size: int = _block_opt,
    profile: Optional[str] = typer.Option(None, "--profile", help="Hardware profile: the sim engine's batch "
                                          "time, and the capacity theory printed for both engines."),
    fit: Optional[str] = typer.Option(None, "--fit", help="Which fit of the profile: staircase, "
                                      "piecewise_linear, affine (default: the profile's best)."),
    profiles_dir: Optional[Path] = _pdir_opt,
    policy: Optional[str] = opt.policy, token_budget: Optional[int] = opt.token_budget,
    max_batch_size: Optional[int] = opt.max_batch_size, request_rate: Optional[float] = opt.request_rate,
    num_requests: Optional[int] = opt.num_requests, duration: Optional[float] = opt.duration,
    seed: Optional[int] = opt.seed, trace: Optional[Path] = opt.trace,
    horizon: Optional[float] = typer.Option(None, "--horizon", help="Stop at this time (s)."),
    force: bool = opt.force,
) -> None:
    """Run a scenario's workload online: on the real PyTorch engine at wall-clock arrival times
    (--engine real), or in the simulator (--engine sim); same output files."""
    from .signals import interruptible
    with interruptible(opt.unfinished(out)):
        _serve_bench(scenario, engine, out, model, weights_seed, device, dtype, threads, block_size, profile, fit,
                     profiles_dir, policy, token_budget, max_batch_size, request_rate, num_requests, duration,
                     seed, trace, horizon, force)


def _serve_bench(scenario, engine, out, model, weights_seed, device, dtype, threads, block_size, profile, fit,
                 profiles_dir, policy, token_budget, max_batch_size, request_rate, num_requests, duration,
                 seed, trace, horizon, force) -> None:
    from ..analysis import workload_capacity
    from ..config import check_runnable, load_scenario
    from ..real.profiles import load_profile, read_profile

    if engine not in ("real", "sim"):
        fail(f"--engine must be real or sim, got {engine!r}")
    ov = opt.overrides(policy, token_budget, max_batch_size, request_rate, None, num_requests, duration, seed, trace)
    ov["simulation.horizon_s"] = horizon
    sc = load_scenario(scenario, ov)
    if out is not None:
        from ..sim.manifest import prepare_out
        prepare_out(out, force=force)
    prof_threads = None
    wl = sc.build_workload()
    check_runnable(sc, wl)
    pol = sc.build_policy()
    eng, _ = sc.single_specs()
    if profile is not None:
        prof_threads = read_profile(profile, profiles_dir).get("threads")
        bt = load_profile(profile, fit, profiles_dir)
        spec = _profile_spec(profile, fit, profiles_dir)
        sc = sc.model_copy(update={"engine": eng.model_copy(update={"batch_time": spec})})
    else:
        bt = sc.build_batch_time()
    # the theory needs the batch time of the engine that runs: a profile for the real engine
    measured = profile is not None or eng.batch_time.model == "profile"
    cap = workload_capacity(pol, bt, wl) if engine == "sim" or measured else None
    extra: dict[str, Any] = {"scenario": sc.model_dump(mode="json"), "engine": engine,
                             "capacity": cap.to_dict() if cap is not None else None}
    if engine == "sim":
        from ..run import simulate_scenario
        res = simulate_scenario(sc)
    else:
        _torch_or_fail()
        res, info = _run_real(sc, pol, wl, model, weights_seed, device, dtype,
                              threads if threads is not None else prof_threads, block_size)
        extra.update(info)
    s = res.summary()
    if out is not None:
        from ..sim.manifest import atomic_path
        from ..sim.output import write_run
        if engine == "real":           # before write_run, which seals the folder last
            with atomic_path(Path(out) / "iterations_real.csv") as tmp:
                res.details.to_csv(tmp, index=False)
        write_run(res, out, extra=extra, command="serve-bench")
    print_summary(s, cap)
    if engine == "real":
        d = res.details
        console.print(f"engine: {extra['model']} on {extra['device']}; mean forward pass "
                      f"{d['forward_s'].mean() * 1e3:.3g} ms, mean scheduling {d['schedule_s'].mean() * 1e3:.3g} ms"
                      if len(d) else f"engine: {extra['model']} on {extra['device']}", highlight=False, markup=False)
    if out is not None:
        console.print(f"wrote {out}/requests.parquet, iterations.parquet, summary.json"
                      + (", iterations_real.csv" if engine == "real" else ""), highlight=False, markup=False)


def _profile_spec(name, fit, directory):
    from ..config import ProfileSpec
    return ProfileSpec(model="profile", name=name, fit=fit or "recommended",
                       dir=str(directory) if directory is not None else None)


def _run_real(sc, pol, wl, model, weights_seed, device, dtype, threads, block_size):
    from ..real.checkpoint import load_model
    from ..real.device import describe
    from ..real.profiling import warm_up
    from ..real.runner import ModelRunner
    from ..real.serve import serve

    dev, dt, n = _setup_torch(device, dtype, threads)
    m = load_model(model, seed=weights_seed, device=dev, dtype=dt)
    runner = ModelRunner(m, block_size=block_size, num_blocks=2048, token_seed=sc.seed)
    warm_up(runner, pol.token_budget)
    what = f"{m.cfg.name} on {describe(dev, dt)}"
    # with engine.memory the runner's cache takes its block ids from the engine core's KV manager
    res = serve(pol, wl.requests(sc.seed), runner, memory=sc.build_memory(), horizon=sc.simulation.horizon_s,
                what=what)
    info = {"model": m.cfg.describe(), "device": describe(dev, dt), "threads": n,
            "kv_blocks": runner.cache.num_blocks, "block_size": block_size}
    return res, info


def profile(
    model: str = _model_opt, name: Optional[str] = typer.Option(None, "--name", help="Profile name "
                                                                 "(default: DEVICE-MODEL, e.g. cpu-small)."),
    profiles_dir: Optional[Path] = _pdir_opt,
    prefill: str = typer.Option("0,32,64,128,256", "--prefill", help="Prefill chunk sizes of the grid."),
    decode: str = typer.Option("0,1,2,4,8,32,64,128", "--decode", help="Decode tokens (requests) of the grid."),
    context: str = typer.Option("32,128,512", "--context", help="KV context per decoding request."),
    prefill_context: str = typer.Option("0,64", "--prefill-context", help="Prompt tokens already cached "
                                        "before the prefill chunk (0: a fresh prompt; > 0: a chunk that "
                                        "continues a partly prefilled prompt)."),
    repeats: int = typer.Option(5, "--repeats", help="Timed iterations per grid cell."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="Skip cells with more tokens "
                                             "than this (e.g. the token budget you will run)."),
    weights_seed: int = _weights_seed, device: str = _device_opt, dtype: str = _dtype_opt,
    threads: Optional[int] = _threads_opt, block_size: int = _block_opt,
    samples: Optional[Path] = typer.Option(None, "--samples", help="Also write every timed iteration to this CSV."),
    seed: int = typer.Option(0, "--seed", help="Seed of the measuring order."),
    warm: bool = typer.Option(False, "--warm", help="Time cells in a tight loop with warm caches and "
                              "compact KV blocks (default: cold caches, scattered blocks, as online)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar (none is drawn when stderr is not a "
                               "terminal either)."),
) -> None:
    """Measure iteration time over a grid of prefill, decode and context sizes, fit the batch-time
    models (staircase, piecewise linear, affine), and store a hardware profile the simulator loads."""
    from .signals import interruptible
    with interruptible("nothing: the profile (and --samples) are written only when every cell is measured"):
        _profile(model, name, profiles_dir, prefill, decode, context, prefill_context, repeats, max_tokens,
                 weights_seed, device, dtype, threads, block_size, samples, seed, warm, quiet)


def _profile(model, name, profiles_dir, prefill, decode, context, prefill_context, repeats, max_tokens,
             weights_seed, device, dtype, threads, block_size, samples, seed, warm, quiet) -> None:
    _torch_or_fail()
    from ..real.checkpoint import load_model
    from ..real.device import describe
    from ..real.profiles import save_profile
    from ..real.profiling import Grid, build_profile, measure
    from ..real.runner import ModelRunner

    grid = Grid(prefill=_ints(prefill, "--prefill"), decode=_ints(decode, "--decode"),
                context=_ints(context, "--context"),
                prefill_context=_ints(prefill_context, "--prefill-context"), repeats=repeats,
                max_tokens=max_tokens)
    dev, dt, n = _setup_torch(device, dtype, threads)
    m = load_model(model, seed=weights_seed, device=dev, dtype=dt)
    name = name or f"{dev.type}-{m.cfg.name}"
    runner = ModelRunner(m, block_size=block_size, num_blocks=2048)
    total = len(grid.cells()) * grid.repeats
    console.print(f"profiling {m.cfg.describe()} on {describe(dev, dt)}: {len(grid.cells())} grid cells "
                  f"x {grid.repeats} repeats = {total} iterations", highlight=False)
    with progress_bar("timed iterations", quiet=quiet) as progress:
        raw = measure(runner, grid, seed=seed, cold=not warm, progress=progress)
    prof = build_profile(raw, name=name, model_desc={"name": m.cfg.name, "spec": model,
                                                     "parameters": m.cfg.num_parameters,
                                                     "config": m.cfg.to_hf()},
                         device_desc=describe(dev, dt), threads=n, grid=grid)
    path = save_profile(prof, name, profiles_dir)
    if samples is not None:
        from ..sim.manifest import atomic_path
        with atomic_path(samples) as tmp:
            raw.to_csv(tmp, index=False)
    console.print(f"noise: median p10-p90 spread {prof['noise']['median_rel_spread_p10_p90']:.1%} of the "
                  f"cell median (largest {prof['noise']['max_rel_spread_p10_p90']:.1%})", highlight=False)
    _print_fits(prof)
    console.print(f"wrote profile {name!r} to {path}; use it with --profile {name} or in a scenario as "
                  f"engine.batch_time: {{model: profile, name: {name}}}", highlight=False)


def _print_fits(prof: dict) -> None:
    from ..real.fit import build_model
    console.print("fit               R^2 (medians) R^2 (samples) RMSE ms  max|res| ms  mean |rel|  model")
    for k, f in prof["fits"].items():
        star = "*" if k == prof["recommended"] else " "
        console.print(f"{star}{k:17s} {f['r2']:12.4f} {f['r2_raw_samples']:13.4f} {f['rmse_ms']:8.3f} "
                      f"{f['max_abs_ms']:11.3f} {f['mean_rel_err']:10.1%}  {build_model(k, f['params']).describe()}",
                      highlight=False)
    best = prof["fits"][prof["recommended"]]
    cells = sorted(zip(best["residuals_ms"], prof["measurements"]), key=lambda x: -abs(x[0]))[:3]
    console.print(f"largest residuals of the {prof['recommended']} fit (measured - model):", highlight=False)
    for res, row in cells:
        p, d, L, c = row[0], row[1], row[2], (row[3] if len(row) > 8 else 0)
        med, lo, hi = row[-4], row[-3], row[-2]
        after = f" after {c} cached prompt tokens" if c else ""
        console.print(f"  prefill {p}{after}, decode {d} at context {L}: {res:+.3f} ms of {med:.3f} ms "
                      f"(p10-p90 {lo:.3f}-{hi:.3f})", highlight=False)


def compare(
    a: Path = typer.Argument(..., help="First run folder (e.g. the simulated run)."),
    b: Path = typer.Argument(..., help="Second run folder (e.g. the real run)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write a PNG: backlog, latency CDFs, iteration times."),
    profile: Optional[str] = typer.Option(None, "--profile", help="Batch-time model for the iteration-time "
                                          "panel (default: the first run's scenario batch time)."),
    fit: Optional[str] = typer.Option(None, "--fit", help="Which fit of --profile: staircase, piecewise_linear, "
                                      "affine (default: the profile's best)."),
    profiles_dir: Optional[Path] = _pdir_opt,
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Overlay two runs (simulated and real): throughput, latency, backlog, batch time."""
    from ..real.compare import compare_runs, load_run, plot_comparison
    from ..real.profiles import load_profile
    ra, rb = load_run(a), load_run(b)
    model = load_profile(profile, fit, profiles_dir) if profile else _scenario_model(ra)
    cmp = compare_runs(ra, rb)
    if plot is not None:
        plot_comparison(ra, rb, plot, model)
    if as_json:
        print_json(cmp)
        return
    console.print(f"a = {a} ({ra.label}), b = {b} ({rb.label})", highlight=False)
    console.print(f"{'metric':28s} {'a':>14s} {'b':>14s} {'(b-a)/a':>9s}")
    for k, v in cmp["metrics"].items():
        def fmt(x):
            return "n/a" if x is None or (isinstance(x, float) and x != x) else f"{x:.6g}"
        rd = "" if v["rel_diff"] is None else f"{v['rel_diff']:+.1%}"
        console.print(f"{k:28s} {fmt(v['a']):>14s} {fmt(v['b']):>14s} {rd:>9s}", highlight=False)
    if plot is not None:
        console.print(f"wrote {plot}", highlight=False)


def _scenario_model(run):
    """The batch-time model recorded in a run's summary.json scenario, if it can be rebuilt."""
    from ..config import Scenario
    sc = run.summary.get("scenario")
    if not isinstance(sc, dict):
        return None
    try:
        return Scenario.model_validate(sc).build_batch_time()
    except Exception:  # noqa: BLE001 - the panel falls back to time against batch tokens
        return None
