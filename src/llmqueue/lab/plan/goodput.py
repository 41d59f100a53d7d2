"""The goodput of one configuration: the highest Poisson rate at which it meets the SLOs.

The search runs on the simulator (the fast core where it applies: the four built-in policies,
no KV memory model, a load-only batch time; the engine core otherwise; the network layer's
router for several replicas) and is bracketed by the theory: the upper end is the
configuration's capacity (Theorem 2's lambda*, or the steady-state-composition lambda* of
:mod:`llmqueue.analysis.mix_capacity` for a composition-dependent batch time, and the KV-memory
bound when the scenario models memory, times the replicas), so no simulation runs above it.

Work shared between rates, configurations and workers:

- common random numbers: every probe of a seed uses the same requests (lengths) and the same
  unit-rate Poisson arrival times, scaled by 1 / rate, so the SLO verdict is a monotone
  function of the rate up to queueing effects, and the search is sharp;
- the workload arrays of a seed, the compiled GPU profiles and their batch-time tables are
  cached per process (a worker reuses them for every configuration it runs);
- configurations that differ only in ``replicas`` run in one task, smallest first: the
  goodput of n replicas starts its search at n / m times that of m replicas, and the bracket
  is widened from there (a few probes instead of a full bisection).

A GPU profile (a composition-dependent batch time) is tabulated into the fast core's load-only
t(b) with the workload's steady-state token mix (:func:`~llmqueue.engine.batch_time.tabulate`);
``exact_batch_time`` runs the composition model itself through the engine core instead
(benchmarks/plan_speed.py measures the difference).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .spec import DEFAULT_GPU, PlanSpec, slo_parts

_SCENARIOS: dict[str, Any] = {}
_ARRAYS: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
_TABLES: dict[tuple, Any] = {}
_REGIONS: dict[tuple, float] = {}


def scenario_of(spec: PlanSpec):
    """The plan's scenario, loaded once per process."""
    from ...config import load_scenario
    key = repr((spec.scenario, sorted(spec.overrides.items())))
    if key not in _SCENARIOS:
        sc = load_scenario(spec.scenario, dict(spec.overrides), kind="engine")
        _SCENARIOS[key] = sc
    return _SCENARIOS[key]


def workload_arrays(spec: PlanSpec, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prompt, decode, unit-rate arrival times) of ``num_requests`` requests for ``seed``.

    Lengths are the scenario's (its distributions, or its trace's requests in order, cycled);
    arrival times are a unit-rate Poisson process from the seed's own stream."""
    key = (spec.scenario, repr(sorted(spec.overrides.items())), spec.num_requests, seed)
    if key not in _ARRAYS:
        sc = scenario_of(spec)
        wl = sc.build_workload()
        n = spec.num_requests
        ss = np.random.SeedSequence(seed)
        lengths_seed, arrival_seed = ss.spawn(2)
        if wl.trace is not None:
            a = wl.arrays(lengths_seed)
            p, d = a.prompt_tokens, a.decode_tokens
            if len(p) == 0:
                raise ValueError("the trace holds no requests")
            reps = -(-n // len(p))
            p, d = np.tile(p, reps)[:n], np.tile(d, reps)[:n]
        else:
            if wl.prompt_tokens is None or wl.decode_tokens is None:
                raise ValueError("plan needs a workload with prompt and decode length distributions or a trace")
            rng = np.random.default_rng(lengths_seed)
            p = wl.prompt_tokens.sample(rng, n)
            d = wl.decode_tokens.sample(rng, n)
        t = np.cumsum(np.random.default_rng(arrival_seed).standard_exponential(n))
        _ARRAYS[key] = (np.asarray(p, dtype=np.int64), np.asarray(d, dtype=np.int64), t)
    return _ARRAYS[key]


@dataclass
class Engine:
    """One configuration, built: policy, batch time (as the simulator runs it), memory, capacity."""

    policy: Any
    batch_time: Any              # what the simulator runs (a table for a tabulated GPU profile)
    model: Any                   # the batch-time model itself
    memory: Any
    gpu: str
    gpus: int
    lambda_star: float           # one replica's capacity (requests/s)
    lambda_source: str
    replicas: int

    @property
    def fast(self) -> bool:
        """Whether a run takes the fast core (one replica, no KV memory, a policy and batch time it runs)."""
        from ...sim.fast import fast_path_reason
        return self.replicas == 1 and self.memory is None and fast_path_reason(self.policy, self.batch_time) is None


def _gpu_model(sc, params: dict):
    from ...engine.gpu_profile import GpuProfileBatchTime
    spec_bt = sc.single_specs()[0].batch_time
    is_gpu = getattr(spec_bt, "model", None) == "gpu-profile"
    if not is_gpu and ("gpu" in params or "tp" in params):
        raise ValueError("--grid gpu / tp need a GPU batch time: give the scenario "
                         "batch_time: {model: gpu-profile, model_id: ..., gpu: ..., backend: ..., tp: ...} "
                         "(or --model-id)")
    if not is_gpu:
        return None
    return GpuProfileBatchTime(spec_bt.model_id, params.get("gpu", spec_bt.gpu), spec_bt.backend,
                               int(params.get("tp", spec_bt.tp)))


def build_engine(spec: PlanSpec, params: dict) -> Engine:
    from ...analysis import capacity_report
    from ...analysis.mix_capacity import decode_context, mix_lambda_star
    from ...engine.batch_time import tabulate
    from ...policies import make_policy
    sc = scenario_of(spec)
    eng = sc.single_specs()[0]
    budget = int(params.get("token_budget", eng.token_budget))
    k = params["max_batch_size"] if "max_batch_size" in params else eng.max_batch_size
    policy = make_policy(params.get("policy", eng.policy), budget, k)
    memory = sc.build_memory()
    p, d, _ = workload_arrays(spec, spec.seeds[0])
    m_p, m_d = float(p.mean()), float(d.mean())
    gm = _gpu_model(sc, params)
    if gm is None:
        model = sc.build_batch_time()
        gpu, tp = DEFAULT_GPU, 1
    else:
        model, gpu, tp = gm, gm.gpu, gm.tp
    ctx = decode_context(p, d)
    if model.load_only:
        bt = model
        lam = capacity_report(policy, model, m_p, m_d).lambda_star
        src = "Theorem 2"
        if k is not None:
            # with a batch-size limit the stability region is a polygon (paper section 6): no policy
            # is stable beyond its edge, theta * (m_p, m_d) at the largest theta
            rkey = (model, budget, k, round(m_p, 6), round(m_d, 6))
            if rkey not in _REGIONS:
                from ...analysis.mix_capacity import region_scale
                _REGIONS[rkey] = region_scale(model, budget, k, m_p, m_d)
            if _REGIONS[rkey] < lam:
                lam, src = _REGIONS[rkey], "k_max stability region"
    else:
        key = (model, budget, round(m_p, 6), round(m_d, 6), round(ctx, 6))
        if spec.exact_batch_time:
            bt = model
        else:
            if key not in _TABLES:
                _TABLES[key] = tabulate(model, budget, m_p, m_d, ctx)
            bt = _TABLES[key]
        mc = mix_lambda_star(policy, model, m_p, m_d, ctx)
        lam, src = mc.lambda_star, f"steady-state composition ({mc.kind})"
    if memory is not None:
        from ...memory.theory import memory_capacity
        from ...workload.lengths import Empirical
        load_bt = bt if bt.load_only else tabulate(model, budget, m_p, m_d, ctx)
        mcap = memory_capacity(policy, load_bt, memory.capacity_tokens, memory.block_size,
                               Empirical(tuple(int(x) for x in p[:2000])),
                               Empirical(tuple(int(x) for x in d[:2000])))
        if mcap.lambda_memory < lam:
            lam, src = mcap.lambda_memory, "KV memory bound"
    replicas = int(params.get("replicas", 1))
    return Engine(policy, bt, model, memory, gpu, tp * replicas, lam, src, replicas)


def _network_requests(spec: PlanSpec, e: Engine, rate: float, seed: int):
    """Simulate ``e.replicas`` replicas behind the router at ``rate``; the visits table."""
    from ...network.model import JobClass, NetEngine, Network, replicas
    from ...network.simulator import simulate_network
    from ...network.workflow import Step, Workflow
    from ...workload.arrivals import ArrivalProcess
    from ...workload.lengths import Empirical

    p, d, t = workload_arrays(spec, seed)
    arrivals = t / rate

    class Replay(ArrivalProcess):
        """The seed's unit-rate arrival times scaled to ``rate`` (common random numbers)."""

        mean_rate = rate
        cv2 = 1.0

        def times(self, rng):
            yield from arrivals.tolist()
            while True:
                yield math.inf

    engines, router = replicas(NetEngine("replica", e.policy, e.batch_time, e.memory), e.replicas, spec.router)
    wf = Workflow.chain(Step("replica", Empirical(tuple(p.tolist())), Empirical(tuple(d.tolist()))))
    net = Network(engines, (JobClass("req", Replay(), wf),), (router,))
    res = simulate_network(net, seed, duration=float(arrivals[-1]), validate=False)
    return res.visits


class _LatencySink:
    """A fast-core sink that keeps only what the SLOs need (no tables are built)."""

    COLS = ("arrival_time", "first_token_time", "completion_time", "decode_tokens")
    wants_iterations = False

    def __init__(self) -> None:
        self.parts: list[dict[str, np.ndarray]] = []

    def add_requests(self, cols: dict[str, np.ndarray]) -> None:
        if cols["request_id"].size:
            self.parts.append({c: cols[c] for c in self.COLS})

    def add_iterations(self, cols: dict[str, np.ndarray]) -> None:
        pass

    def columns(self) -> dict[str, np.ndarray]:
        return {c: np.concatenate([p[c] for p in self.parts]) if self.parts else np.array([]) for c in self.COLS}


def _latencies_of(cols) -> dict[str, np.ndarray]:
    """Per-request ttft, tpot, e2el (s) of the completed requests, in arrival order (as
    :func:`~llmqueue.sim.metrics.request_latencies`)."""
    comp = np.asarray(cols["completion_time"], dtype=float)
    done = np.isfinite(comp)
    arr = np.asarray(cols["arrival_time"], dtype=float)[done]
    first = np.asarray(cols["first_token_time"], dtype=float)[done]
    dec = np.asarray(cols["decode_tokens"])[done]
    comp = comp[done]
    order = np.argsort(arr, kind="stable")
    arr, first, dec, comp = arr[order], first[order], dec[order], comp[order]
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(dec > 1, (comp - first) / np.maximum(dec - 1, 1), np.nan)
    return {"ttft": first - arr, "e2el": comp - arr, "tpot": tpot}


def _drop_warmup(spec: PlanSpec, lat: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    k = int(spec.warmup * spec.num_requests)
    return {name: x[k:] for name, x in lat.items()}


def latencies(spec: PlanSpec, e: Engine, rate: float, seed: int) -> dict[str, np.ndarray]:
    """Per-request ttft, tpot, e2el (seconds) at ``rate``, in arrival order, without the first
    ``spec.warmup`` share of the requests (the transient from an empty engine; and in an overloaded
    engine, whose queue grows, the later requests are the ones that show it).

    One replica runs on the fast core when it applies (fed numpy columns, keeping only the
    latency columns), else on the engine core; several replicas on the network layer."""
    from ...sim.fast import run_core
    from ...sim.simulate import simulate
    from ...workload.arrays import RequestArrays, RequestStream
    if e.replicas > 1:
        v = _network_requests(spec, e, rate, seed)
        return _drop_warmup(spec, _latencies_of({c: v[c].to_numpy() for c in _LatencySink.COLS}))
    p, d, t = workload_arrays(spec, seed)
    stream = RequestStream(iter([RequestArrays(np.arange(len(p)), t / rate, p, d)]))
    if e.fast:
        sink = _LatencySink()
        run_core(e.policy, e.batch_time, stream, sink)
        return _drop_warmup(spec, _latencies_of(sink.columns()))
    table = simulate(e.policy, e.batch_time, stream, memory=e.memory, validate=False).requests
    return _drop_warmup(spec, _latencies_of({c: table[c].to_numpy() for c in _LatencySink.COLS}))


def judge(spec: PlanSpec, lat: list[dict[str, np.ndarray]], n: int) -> tuple[bool, dict]:
    """Whether pooled latencies meet the SLOs; the summary values (ms), the attainment and the
    ``margin``: the largest bounded statistic over its bound (with ``attainment``, the share of
    requests missing an SLO over the share allowed); <= 1 when the SLOs are met, infinite when a
    request did not finish."""
    pooled = {k: np.concatenate([x[k] for x in lat]) for k in ("ttft", "tpot", "e2el")}
    unfinished = n - len(pooled["ttft"])
    out: dict[str, Any] = {}
    ok = unfinished == 0
    meets = np.ones(len(pooled["ttft"]), dtype=bool)
    names = set(spec.slos) | {"p99_ttft_ms", "p99_tpot_ms"}
    for name in sorted(names):
        pct, metric = slo_parts(name)
        x = pooled[metric]
        x = x[np.isfinite(x)]
        v = float("nan") if not x.size else float((x.mean() if pct is None else np.percentile(x, pct)) * 1e3)
        out[name] = v
        if name in spec.slos:
            bound = spec.slos[name]
            if spec.attainment is None:
                ok = ok and v <= bound
            else:
                with np.errstate(invalid="ignore"):
                    meets &= ~(pooled[metric] * 1e3 > bound)      # NaN (one-token tpot) meets
    att = float(meets.sum() / n)
    out["attainment"] = att
    if spec.attainment is not None:
        ok = ok and att >= spec.attainment
        margin = (1 - att) / max(1 - spec.attainment, 1e-9)
    else:
        margin = max(out[k] / b for k, b in spec.slos.items())
    out["margin"] = margin if unfinished == 0 and math.isfinite(margin) else math.inf
    return ok, out


def probe(spec: PlanSpec, e: Engine, rate: float) -> tuple[bool, dict]:
    lat = [latencies(spec, e, rate, s) for s in spec.seeds]
    kept = spec.num_requests - int(spec.warmup * spec.num_requests)
    return judge(spec, lat, kept * len(spec.seeds))


def min_tpot_ms(e: Engine) -> float:
    """The fastest decode step there is (one decode alone): no TPOT can be below it."""
    return float(e.model.duration(0, 1, 1)) * 1e3


def goodput(spec: PlanSpec, e: Engine, guess: float | None = None, step: float | None = None) -> dict:
    """Search the highest rate meeting the SLOs in (0, replicas * lambda*]; see the module docstring.

    Starting at ``guess`` (else 0.7 of the capacity), the rate moves by factors of ``step``
    (default 1.05 from a guess, 1.5 without) until a bracket is found, then narrows it (:func:`_narrow`)."""
    # the theory's capacity is excluded: at it and above, queues grow without bound, and a finite
    # run that still meets the SLOs there would only reflect its length
    cap = e.lambda_star * e.replicas * (1 - spec.resolution)
    res = spec.resolution
    probes: list[tuple[float, bool]] = []
    info: dict[float, dict] = {}

    def test(r: float) -> bool:
        ok, vals = probe(spec, e, r)
        probes.append((r, ok))
        info[r] = vals
        return ok

    floor = [v for k, v in spec.slos.items() if slo_parts(k)[1] == "tpot" and spec.attainment is None
             and slo_parts(k)[0] is not None]
    if floor and min(floor) < min_tpot_ms(e):       # no rate can meet it: pruned by the theory
        return {"max_rate": 0.0, "probes": 0, "pruned": "tpot below the fastest decode step",
                "capacity": cap, "at_capacity": False}
    lo_bound = cap * 1e-3
    start = min(guess, cap) if guess is not None and guess > 0 else 0.7 * cap
    lo, hi = None, None                              # largest shown ok, smallest shown not ok
    r = max(start, lo_bound)
    step = step or (1.05 if guess is not None else 1.5)
    if test(r):
        lo = r
        while hi is None:
            if lo >= cap:
                break
            r = min(cap, lo * step)
            if test(r):
                lo = r
            else:
                hi = r
    else:
        hi = r
        down = 0
        while lo is None:
            down += 1
            if down == 3:                            # not near: is any rate low enough?
                if not test(lo_bound):
                    break                            # the SLOs fail even at a thousandth of capacity
                lo = lo_bound
                break
            r = hi / step
            if r < lo_bound:
                break
            if test(r):
                lo = r
            else:
                hi = r
    if lo is not None and hi is not None:
        lo, hi = _narrow(lambda r: (test(r), info[r]["margin"]), lo, hi, info[lo]["margin"], info[hi]["margin"], res)
    out = {"max_rate": lo if lo is not None else 0.0, "probes": len(probes), "pruned": None, "capacity": cap,
           "at_capacity": lo is not None and lo >= cap * (1 - 1e-12), "upper_rate": hi}
    if lo is not None:
        out.update(info[lo])
    return out


def _narrow(test: Callable[[float], tuple[bool, float]], lo: float, hi: float, m_lo: float, m_hi: float,
            res: float) -> tuple[float, float]:
    """Narrow [lo, hi] (met at lo, missed at hi) until ``hi / lo - 1 <= res``.

    The next rate is where the margin (:func:`judge`, 1 at the boundary) crosses 1 on the line
    through the bracket's ends (regula falsi; with common random numbers the margin is a smooth
    function of the rate), kept at least a quarter of the resolution inside the bracket so that
    each probe narrows it; an end kept twice in a row has its distance to 1 halved (the Illinois
    rule), so both ends move. Bisection when a margin is not finite (a request left unfinished)."""
    kept = 0                              # +1: lo was kept by the last probe, -1: hi was
    while hi / lo - 1 > res:
        if math.isfinite(m_lo) and math.isfinite(m_hi) and m_hi > 1 >= m_lo:
            r = lo + (1 - m_lo) * (hi - lo) / (m_hi - m_lo)
            edge = res / 4
            r = min(max(r, lo * (1 + edge)), hi / (1 + edge))
        else:
            r = math.sqrt(lo * hi)
        ok, m = test(r)
        if ok:
            lo, m_lo = r, m
            if kept == -1 and math.isfinite(m_hi):
                m_hi = 1 + (m_hi - 1) / 2
            kept = -1
        else:
            hi, m_hi = r, m
            if kept == 1 and math.isfinite(m_lo):
                m_lo = 1 - (1 - m_lo) / 2
            kept = 1
    return lo, hi


def run_task(spec_dict: dict, configs: list[dict], screened: list[float] | None = None) -> dict:
    """A worker's task: neighbouring configurations (differing only in ``replicas`` and
    ``token_budget``), in order; each search starts from the previous configuration's goodput
    scaled by the ratio of their capacities. Returns {id: row}.

    With ``screened`` (their goodputs from the screening runs) the task refines: each
    configuration is searched again with the spec's long runs and fine bracket, starting at its
    screened goodput in steps of about one screening standard deviation."""
    from .spec import config_id
    spec = PlanSpec.from_dict(spec_dict)
    if screened is not None:
        return _refine_task(spec, configs, screened)
    rows: dict[str, dict] = {}
    prev: tuple[float, float] | None = None          # (capacity, goodput) of the previous configuration
    for params in configs:
        row: dict[str, Any] = {"params": params}
        try:
            e = build_engine(spec, params)
        except (ValueError, ModuleNotFoundError) as err:
            rows[config_id(params)] = {**row, "error": str(err), "max_rate": 0.0}
            continue
        guess = None
        if prev is not None and prev[1] > 0:
            guess = prev[1] * e.lambda_star * e.replicas / prev[0]
        try:
            g = goodput(spec, e, guess)
        except Exception as err:  # an engine that stalls or refuses the workload: no goodput
            from ...errors import LLMQueueError
            if not isinstance(err, (LLMQueueError, ValueError)):
                raise
            g = {"max_rate": 0.0, "probes": 0, "pruned": f"{type(err).__name__}: {str(err)[:200]}",
                 "capacity": e.lambda_star * e.replicas, "at_capacity": False}
        prev = (e.lambda_star * e.replicas, g["max_rate"])
        row.update(g)
        row.update(gpu=e.gpu, gpus=e.gpus, lambda_star=e.lambda_star, lambda_source=e.lambda_source,
                   batch_time=e.batch_time.describe())
        rows[config_id(params)] = row
    return rows


def _refine_task(spec: PlanSpec, configs: list[dict], screened: list[float]) -> dict:
    from .spec import config_id
    step = 1 + spec.screen_band() / 3
    rows = {}
    for params, g0 in zip(configs, screened):
        e = build_engine(spec, params)
        long = spec.refining(e.fast)
        g = goodput(long, e, g0, step)
        rows[config_id(params)] = {**g, "requests": long.num_requests * len(long.seeds)}
    return rows
