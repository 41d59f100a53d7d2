"""Run a plan: configurations on a backend, each finished one appended to a results file.

Tasks (the configurations that differ only in ``replicas``) run on the lab's backends (local
processes by default, Ray with ``--ray``, or serially). Every finished configuration is one line
of ``OUT/plan.jsonl`` (the lab's :class:`~llmqueue.lab.journal.Journal`: flushed and fsynced at
once, a line cut by a kill dropped on reading), so an interrupted plan run again with the same
arguments recomputes nothing it finished. ``OUT/plan.json`` holds the spec; a plan resumed with
a different spec (other SLOs, requests, seeds ...) is refused. Prices are not part of it: costs
are computed from the rows when the plan is written.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
    computed: int
    resumed: int

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
    after each finished task."""
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
    total, done = len(configs), resumed
    if on_done:
        on_done(done, total)
    spec_dict = spec.to_dict()
    try:
        for i, group in enumerate(todo):
            backend.submit(i, (spec_dict, group))
        while backend.pending:
            _, result = backend.next_done()
            for cid, row in result.items():
                rows[cid] = journal.record(cid, row) if journal is not None else json.loads(json.dumps(row))
                done += 1
            if on_done:
                on_done(done, total)
    finally:
        backend.close()
        if journal is not None:
            journal.close()
    p, d, _ = workload_arrays(spec, spec.seeds[0])
    mean_tokens = float(p.mean() + d.mean())
    ordered = []
    for c in configs:
        r = dict(rows[config_id(c)])
        r.update(costs(spec, r, mean_tokens))
        ordered.append(r)
    ordered.sort(key=lambda r: (r.get("cost_per_mtok") is None, r.get("cost_per_mtok") or 0, -(r["max_rate"] or 0)))
    return PlanOutcome(spec, ordered, choose_best(ordered, target_rate), pareto_front(ordered),
                       len(configs) - resumed, resumed)


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
