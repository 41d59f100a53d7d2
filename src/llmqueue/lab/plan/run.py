"""Run a plan: configurations on a backend, each finished one appended to a results file.

Tasks (the configurations that differ only in ``replicas``) run on the lab's backends (local
processes by default, Ray with ``--ray``, or serially). Every finished configuration is one line
of ``OUT/plan.jsonl`` (the lab's :class:`~llmqueue.lab.journal.Journal`: flushed and fsynced at
once, a line cut by a kill dropped on reading), so an interrupted plan run again with the same
arguments recomputes nothing it finished. ``OUT/plan.json`` holds the spec; a plan resumed with
a different spec (other SLOs, requests, seeds ...) is refused. Prices are not part of it: costs
are computed from the rows when the plan is written.

Two stages. **Screening** searches every configuration with short runs (``num_requests``: a few
percent of noise). **Refining** searches the contenders again with long runs
(``refine_requests``, a fine bracket), starting from their screened goodput: the configurations
that the screening's noise band (:meth:`PlanSpec.band`) leaves possibly on the Pareto front,
nearest the front first, at most ``refine`` of them a round; rounds repeat (at most
:data:`REFINE_ROUNDS`) until the ``refine`` nearest the front are all refined. A refined row keeps
its screened goodput as ``screen_rate``; refinements are journal lines too (``refine:<id>``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...sim.manifest import prepare_out, write_text
from ..journal import Journal
from .goodput import run_task
from .spec import PlanSpec, config_id


class PlanMismatch(ValueError):
    """The output folder holds a plan with another spec."""


@dataclass
class PlanOutcome:
    spec: PlanSpec
    rows: list[dict]           # one per configuration, in grid order, with cost fields
    best: dict | None
    pareto: list[dict]
    computed: int              # searches run now (screening and refining)
    resumed: int               # searches read back from an earlier run's journal

    @property
    def refined(self) -> int:
        """Configurations refined."""
        return sum(bool(r.get("refined")) for r in self.rows)

    def to_json(self) -> dict:
        def public(r: dict) -> dict:
            keep = ("params", "max_rate", "p99_ttft_ms", "p99_tpot_ms", "cost_per_mtok")
            d = {k: _clean(r.get(k)) for k in keep}
            d.update({k: _clean(v) for k, v in r.items() if k not in keep})
            return d
        return {"configs": [public(r) for r in self.rows], "best": public(self.best) if self.best else None,
                "pareto": [r["params"] for r in self.pareto]}


def _clean(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    return x


#: Most configurations per task: a task's finished configurations are recorded when it returns,
#: so an interruption loses at most the tasks in flight.
TASK_SIZE = 6


def _tasks(configs: list[dict]) -> list[list[dict]]:
    """Neighbouring configurations: grouped by everything but ``replicas`` and ``token_budget``,
    ordered by (replicas, token_budget), cut into tasks of at most :data:`TASK_SIZE`."""
    groups: dict[str, list[dict]] = {}
    for c in configs:
        key = json.dumps({k: v for k, v in c.items() if k not in ("replicas", "token_budget")}, sort_keys=True)
        groups.setdefault(key, []).append(c)
    tasks = []
    for g in groups.values():
        g = sorted(g, key=lambda c: (c.get("replicas", 1), c.get("token_budget", 0)))
        tasks += [g[i: i + TASK_SIZE] for i in range(0, len(g), TASK_SIZE)]
    return tasks


#: Refining rounds at most (each refines up to ``PlanSpec.refine`` configurations).
REFINE_ROUNDS = 3


def contenders(rows: list[dict], spec: PlanSpec) -> list[dict]:
    """At most ``spec.refine`` configurations that may be on the Pareto front, nearest it first.

    A configuration is left out when another one is better for sure: its goodput's lower band
    edge is above this one's upper edge, at no higher cost per unit of goodput (the bands are
    :meth:`PlanSpec.band`, narrower for refined rows). The rest are ordered by how many others
    beat them on both goodput and cost (the front first), then by goodput."""
    live = [r for r in rows if (r.get("max_rate") or 0) > 0 and not r.get("error")]
    if not live or spec.refine <= 0:
        return []
    g = np.array([r["max_rate"] for r in live], dtype=float)
    price = np.array([r.get("price_per_hour") or 1.0 for r in live], dtype=float)
    band = np.array([spec.band(r["requests"]) if r.get("refined") else spec.screen_band() for r in live])
    up, lo = g * (1 + band), g * (1 - band)
    sure = ((lo[None, :] >= up[:, None]) & (price[None, :] / lo[None, :] <= price[:, None] / up[:, None])).any(axis=1)
    c = price / g
    gd, gc, cd, cc = g[None, :], g[:, None], c[None, :], c[:, None]      # d: the others, c: this one
    better = (gd >= gc) & (cd <= cc) & ((gd > gc) | (cd < cc))
    beaten = better.sum(axis=1)
    order = sorted(np.flatnonzero(~sure), key=lambda i: (beaten[i], -g[i]))
    return [live[i] for i in order[: spec.refine]]


def merge_refined(row: dict, refined: dict) -> dict:
    """The screened row with the refining search's goodput and latencies."""
    return {**row, **refined, "refined": True, "screen_rate": row["max_rate"],
            "probes": row.get("probes", 0) + refined.get("probes", 0)}


def costs(spec: PlanSpec, row: dict, mean_tokens: float) -> dict:
    """Cost per million tokens (prompt + output) at the configuration's goodput."""
    price = spec.prices.get(row.get("gpu", ""))
    rate = row.get("max_rate") or 0.0
    per_hour = None if price is None else price * row.get("gpus", 1)
    if per_hour is None or rate <= 0:
        return {"price_per_hour": per_hour, "cost_per_mtok": math.inf if per_hour is not None else None,
                "tokens_per_s": rate * mean_tokens}
    tps = rate * mean_tokens
    return {"price_per_hour": per_hour, "cost_per_mtok": per_hour / 3600 / tps * 1e6, "tokens_per_s": tps}


def pareto_front(rows: list[dict]) -> list[dict]:
    """Configurations no other beats on both goodput (higher) and cost (lower), by goodput."""
    ok = [r for r in rows if (r.get("max_rate") or 0) > 0 and r.get("cost_per_mtok") is not None
          and math.isfinite(r["cost_per_mtok"])]
    front: list[dict] = []
    for r in sorted(ok, key=lambda r: (r["cost_per_mtok"], -r["max_rate"])):
        if not front or r["max_rate"] > front[-1]["max_rate"]:
            front.append(r)
    return sorted(front, key=lambda r: r["max_rate"])


def choose_best(rows: list[dict], target_rate: float | None) -> dict | None:
    if target_rate is None:
        ok = [r for r in rows if (r.get("max_rate") or 0) > 0]
        return max(ok, key=lambda r: (r["max_rate"], -(r.get("cost_per_mtok") or 0))) if ok else None
    ok = [r for r in rows if (r.get("max_rate") or 0) >= target_rate and r.get("cost_per_mtok") is not None]
    return min(ok, key=lambda r: (r["cost_per_mtok"], -r["max_rate"])) if ok else None


def run_plan(spec: PlanSpec, out: Path | None, backend, *, fresh: bool = False,
             on_done: Callable[[int, int], None] | None = None, target_rate: float | None = None) -> PlanOutcome:
    """Plan every configuration of ``spec`` (see the module docstring); ``on_done(done, total)``
    after each finished task and whenever refining adds searches to the total."""
    from .goodput import workload_arrays
    configs = spec.configs()
    if not configs:
        configs = [{}]
    journal: Journal | None = None
    if out is not None:
        out = Path(out)
        meta = out / "plan.json"
        # --fresh clears the folder; one holding a plan is resumed (unsealed until the plan is done);
        # any other non-empty folder is refused
        resuming = not fresh and meta.exists() and (out / "plan.jsonl").exists()
        prepare_out(out, force=fresh, resume=resuming)
        if resuming:
            old = json.loads(meta.read_text())
            if old.get("digest") != spec.digest():
                raise PlanMismatch(f"{out} holds a plan with other settings (SLOs, scenario, requests, seeds, "
                                   f"search); use another --out or --fresh")
        write_text(meta, json.dumps({"digest": spec.digest(), "spec": spec.to_dict()}, indent=1))
        journal = Journal(out / "plan.jsonl")
    rows: dict[str, dict] = {}
    todo: list[list[dict]] = []
    resumed = 0
    for group in _tasks(configs):
        missing = [c for c in group if journal is None or config_id(c) not in journal]
        resumed += len(group) - len(missing)
        if journal is not None:
            rows.update({config_id(c): journal.get(config_id(c)) for c in group if config_id(c) in journal})
        if missing:
            todo.append(missing)
    progress = _Counter(len(configs), resumed, on_done)
    spec_dict = spec.to_dict()
    p, d, _ = workload_arrays(spec, spec.seeds[0])
    mean_tokens = float(p.mean() + d.mean())
    try:
        for cid, row in _run(backend, [(spec_dict, group) for group in todo], journal, progress):
            rows[cid] = row
        by_id = {}
        for c in configs:
            r = dict(rows[config_id(c)])
            r.update(costs(spec, r, mean_tokens))
            by_id[config_id(c)] = r
        for _ in range(REFINE_ROUNDS):
            picks = [r for r in contenders(list(by_id.values()), spec) if not r.get("refined")]
            if not picks:
                break
            done_before = {}
            for r in picks:
                key = "refine:" + config_id(r["params"])
                if journal is not None and key in journal:
                    done_before[key] = journal.get(key)
            progress.extend(len(picks), len(done_before))
            tasks = [(spec_dict, [r["params"]], [r["max_rate"]]) for r in picks
                     if "refine:" + config_id(r["params"]) not in done_before]
            found = dict(done_before)
            found.update(_run(backend, tasks, journal, progress, prefix="refine:"))
            for r in picks:
                cid = config_id(r["params"])
                merged = merge_refined(r, found["refine:" + cid])
                merged.update(costs(spec, merged, mean_tokens))
                by_id[cid] = merged
    finally:
        backend.close()
        if journal is not None:
            journal.close()
    ordered = [by_id[config_id(c)] for c in configs]
    ordered.sort(key=lambda r: (r.get("cost_per_mtok") is None, r.get("cost_per_mtok") or 0, -(r["max_rate"] or 0)))
    return PlanOutcome(spec, ordered, choose_best(ordered, target_rate), pareto_front(ordered),
                       progress.total - progress.resumed, progress.resumed)


class _Counter:
    """Finished searches against the searches known so far, told to ``on_done(done, total)``."""

    def __init__(self, total: int, resumed: int, on_done: Callable[[int, int], None] | None) -> None:
        self.total, self.done, self.resumed, self.on_done = total, resumed, resumed, on_done
        self._tell()

    def _tell(self) -> None:
        if self.on_done:
            self.on_done(self.done, self.total)

    def extend(self, more: int, resumed: int) -> None:
        self.total += more
        self.done += resumed
        self.resumed += resumed
        self._tell()

    def advance(self, n: int) -> None:
        self.done += n
        self._tell()


def _run(backend, tasks: list[tuple], journal: Journal | None, progress: _Counter, prefix: str = ""):
    """Run ``tasks`` on ``backend``; yield (journal key, row) as each is recorded."""
    for i, args in enumerate(tasks):
        backend.submit(i, args)
    while backend.pending:
        _, result = backend.next_done()
        for cid, row in result.items():
            key = prefix + cid
            yield key, journal.record(key, row) if journal is not None else json.loads(json.dumps(row))
        progress.advance(len(result))


def plan_backend(name: str, workers: int | None = None, address: str | None = None):
    """A lab backend (local processes, serial, ray) that runs plan tasks."""
    from ..backends import LocalBackend, RayBackend, SerialBackend
    if name == "serial" or (name == "local" and workers == 1):
        return SerialBackend(run_task)
    if name == "local":
        return LocalBackend(workers, run_task)
    if name == "ray":
        return RayBackend(address, workers, run_task)
    raise ValueError(f"unknown backend {name!r}; choose local, serial or ray")
