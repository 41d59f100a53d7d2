"""Simulate a network of engines with the single-engine event core (:class:`SimEngine` on one
:class:`Kernel`) and the same policies. An engine with ``memory`` (:class:`NetEngine`) has its
own KV cache in its engine core: admission, preemption and prefix caching as in a single-engine
run; its recomputed and cached tokens are in ``NetworkResult.tokens``.

Jobs of each class arrive by their arrival process and start their workflow's entry steps.
Every visit is a new :class:`Request` (a fresh global id, ``job_class`` = the step's label, its
own prompt and decode draws) submitted to the step's engine, or to the engine a router picks.
When an engine completes it, the job moves on: the step repeats with its ``repeat``
probability, then routing picks the next step (routing workflows) or the steps waiting for it
start once all their dependencies are complete (DAGs, fork-join). A job completes when none
of its visits is in flight. A visit whose prompt and decode draws are both 0 has no work and
completes at once.

With a prefill/decode split (``Network.disaggregation``), a visit addressed to the prefill pool
is first a prefill-only request there (its decode tokens 0: it leaves after its last prompt
token); its KV cache then crosses the link (latency + bytes / bandwidth, an event on the same
kernel), and it enters a decode engine of the decode pool with its prompt already computed
(``EngineCore.add`` with ``prefill_done``), where it needs KV memory for its whole context.
The visits table has both parts (two request ids, the engine tells which pool).

A class with ``share_context`` (:mod:`.context`) makes each job's visits one growing token
stream: a visit's prompt is the job's context so far plus the step's draw (its new tokens), with
block hashes, so engines with prefix caching serve the shared part. On an engine whose memory
has ``eviction: workflow``, a completed visit's cached prompt is marked
(:meth:`KVManager.pin_prefix`, evicted last) while the job may still visit that engine, until
its next visit there completes, the job ends or the engine's ``ttl_s`` passes.

Randomness: one ``SeedSequence(seed)``; class c uses its child c, whose children are
0: arrival gaps, 1 + 2s / 2 + 2s: prompt / decode tokens of step s, 1 + 2S: routing and
repeats (S steps), 2 + 2S: the jobs' context keys (classes with ``share_context`` only).
Router r uses child C + r of the root (C classes). So a one-class,
one-step network draws exactly what ``Workload.requests(SeedSequence(seed).spawn_key (0,))``
draws, and gives the single-engine results request for request.

The run stops at ``horizon`` seconds, or (without one) when arrivals have stopped at
``duration`` and every job is done. ``max_backlog_tokens`` stops a diverging run early, once
the total backlog at a sample exceeds it. Backlogs are sampled every ``sample_interval``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import count

import numpy as np

from ..engine.request import Request
from ..sim.diverging import DivergenceRule
from ..sim.engine import RequestLog, SimEngine
from ..sim.footprint import Footprint, plan_run
from ..sim.kernel import ARRIVAL, Kernel
from ..workload.arrivals import CHUNK
from ..workload.workload import child_generators
from .board import BacklogBoard
from .context import JobContext
from .model import Network
from .pressure import MaxPressure
from .result import NetworkResult, build_result
from .routers import RouterState
from .traffic import visit_routes, visit_tokens


def _draws(dist, rng: np.random.Generator):
    """Token counts of one step, drawn CHUNK at a time (as workloads draw them)."""
    while True:
        yield from dist.sample(rng, CHUNK).tolist()


class _Job:
    __slots__ = ("job_id", "ci", "arrival", "active", "deps", "visits", "ctx", "running", "pinned")

    def __init__(self, job_id: int, ci: int, arrival: float, deps: list[int]) -> None:
        self.job_id, self.ci, self.arrival = job_id, ci, arrival
        self.active = 0
        self.deps = deps
        self.visits = 0
        self.ctx: JobContext | None = None     # shared context only
        self.running: dict[int, int] = {}      # step -> visits in flight (shared context only)
        self.pinned: set[int] = set()          # engines holding a workflow pin of this job


class _ClassRun:
    """One job class during a run: its random streams and its workflow's structure."""

    def __init__(self, ci: int, cls, seed: int) -> None:
        wf = cls.workflow
        n = len(wf.steps)
        gens = child_generators(np.random.SeedSequence(seed, spawn_key=(ci,)), 2 + 2 * n)
        self.ci, self.cls, self.wf = ci, cls, wf
        self.times = cls.arrival.times(gens[0])
        self.prompt = [_draws(s.prompt_tokens, gens[1 + 2 * i]) for i, s in enumerate(wf.steps)]
        self.decode = [_draws(s.decode_tokens, gens[2 + 2 * i]) for i, s in enumerate(wf.steps)]
        self.route = gens[1 + 2 * n]
        self.entry = [wf.index(e) for e in wf.entry]
        self.deps0 = [len(s.after) for s in wf.steps]
        self.dependents = wf.dependents()
        self.next = [[(wf.index(t), p) for t, p in s.next] for s in wf.steps]
        self.repeat = [s.repeat for s in wf.steps]
        self.labels = [s.label for s in wf.steps]
        self.routing = wf.kind == "routing"
        self.shared = cls.share_context
        if self.shared:     # one more child stream, only for shared context: the jobs' random keys
            self.keys = child_generators(np.random.SeedSequence(seed, spawn_key=(ci,)), 3 + 2 * n)[2 + 2 * n]


class _NetworkRun:
    def __init__(self, net: Network, seed: int, duration: float | None, validate: bool) -> None:
        self.net, self.duration = net, duration
        self.kernel = Kernel()
        self.board = BacklogBoard(len(net.engines))
        self.request_logs = [RequestLog() for _ in net.engines]
        self.iteration_logs = [self.board.tap(i) for i in range(len(net.engines))]
        self.engines = [SimEngine(self.kernel, e.policy, e.batch_time, memory=e.memory, request_log=rl,
                                  iteration_log=il, on_complete=self._visit_done, validate=validate, name=e.name,
                                  idle_wait=e.batch_time.duration(0, 1, 0) if getattr(e.policy, "may_idle", False)
                                  else None, on_backlog=self.board.adjuster(i))
                        for i, (e, rl, il) in enumerate(zip(net.engines, self.request_logs, self.iteration_logs,
                                                            strict=True))]
        if any(isinstance(e.policy, MaxPressure) for e in net.engines):
            routes, sizes = visit_routes(net), visit_tokens(net)
            for sim, e in zip(self.engines, net.engines):
                if isinstance(e.policy, MaxPressure):
                    sim.policy = e.policy.bind(routes, sizes, self.snapshot)
        by_name = {e.name: sim for e, sim in zip(net.engines, self.engines)}
        self.engine_index = {sim: i for i, sim in enumerate(self.engines)}
        n_cls = len(net.classes)
        routers = {r.name: RouterState(r.rule, [by_name[x] for x in r.engines],
                                       child_generators(np.random.SeedSequence(seed, spawn_key=(n_cls + k,)), 1)[0])
                   for k, r in enumerate(net.routers)}
        self.classes = [_ClassRun(ci, c, seed) for ci, c in enumerate(net.classes)]
        # workflow retention: engines whose KV memory keeps the prefix of a job that will come back
        self.retain = {i: (e.memory.ttl_s or math.inf) for i, e in enumerate(net.engines)
                       if e.memory is not None and e.memory.eviction == "workflow" and e.memory.prefix_caching}
        index = {e.name: i for i, e in enumerate(net.engines)}
        self.reach = [_reach(c.workflow, [frozenset(index[x] for x in net.members(st.engine))
                                          for st in c.workflow.steps])
                      if cr.shared and self.retain else [] for c, cr in zip(net.classes, self.classes, strict=True)]
        self.ctx_visit: dict[int, tuple[int, int, int]] = {}   # request id -> (segment, new tokens, engine)
        self._last_rid, self._last_ei = -1, -1                  # the request _submit made last, its engine
        # where each step's visits go: an engine (fixed) or a router (chosen per visit)
        self.target = [[routers.get(s.engine, by_name.get(s.engine)) for s in c.workflow.steps]
                       for c in net.classes]
        dis = self.dis = net.disaggregation
        self.decode_pool = None if dis is None else routers.get(dis.decode, by_name.get(dis.decode))
        self.split = [[dis is not None and s.engine == dis.prefill for s in c.workflow.steps] for c in net.classes]
        self.handoff: dict[int, int] = {}      # prefill-phase request id -> its decode tokens
        self.rids = count()
        self.job_ids = count()
        self.meta: dict[int, tuple[_Job, int]] = {}
        self.visit_rows: list[tuple] = []      # request_id, job_id, class, step, engine
        self.job_rows: list[tuple] = []        # job_id, class, arrival, completion, visits
        self.jobs_in_system = 0
        self.arrivals_open = len(self.classes)
        self.last_event = 0.0
        for cr in self.classes:
            self._schedule_arrival(cr)

    def snapshot(self) -> dict[str, int]:
        """Unprocessed tokens per label now (the max-pressure policies' view of the network)."""
        return self.board.snapshot(self.kernel.now)

    # -- arrivals -----------------------------------------------------------------------------
    def _schedule_arrival(self, cr: _ClassRun) -> None:
        t = next(cr.times)
        if self.duration is not None and t > self.duration:
            self.arrivals_open -= 1
            return
        self.kernel.schedule(t, lambda: self._arrive(cr), ARRIVAL)

    def _arrive(self, cr: _ClassRun) -> None:
        job = _Job(next(self.job_ids), cr.ci, self.kernel.now, list(cr.deps0))
        if cr.shared:
            job.ctx = JobContext(int(cr.keys.integers(0, 2 ** 63)), cr.cls.hash_block_tokens)
        self.jobs_in_system += 1
        self.last_event = self.kernel.now
        for s in cr.entry:
            self._start(job, s)
        self._schedule_arrival(cr)

    # -- visits -------------------------------------------------------------------------------
    def _start(self, job: _Job, s: int) -> None:
        cr = self.classes[job.ci]
        p, d = next(cr.prompt[s]), next(cr.decode[s])
        job.active += 1
        job.visits += 1
        ctx = job.ctx
        if ctx is not None:
            job.running[s] = job.running.get(s, 0) + 1
        if p + d == 0:                      # no work: passes through at once
            self._after_visit(job, s)
            return
        hashes = None
        if ctx is not None:                 # the prompt: the job's context so far + p new tokens
            sid, new = ctx.new_segment(), p
            p, hashes = ctx.prompt(new, sid)
        target = self.target[job.ci][s]
        if self.split[job.ci][s] and d > 0:
            if p == 0:                      # nothing to prefill or transfer
                self._decode(job, s, None, p, d)
            else:
                rid = self._submit(target, job, s, p, 0, hashes=hashes)
                self.handoff[rid] = d
        else:
            rid = self._submit(target, job, s, p, d, hashes=hashes)
        if ctx is not None:
            self.ctx_visit[self._last_rid] = (sid, new, self._last_ei)

    def _submit(self, target: SimEngine | RouterState | None, job: _Job, s: int, p: int, d: int,
                prefill_done: int = 0, hashes: tuple[int, ...] | None = None) -> int:
        rid = next(self.rids)
        label = self.classes[job.ci].labels[s]
        request = (Request(rid, self.kernel.now, p, d, label) if hashes is None else
                   Request(rid, self.kernel.now, p, d, label, block_hashes=hashes,
                           hash_block_tokens=self.classes[job.ci].cls.hash_block_tokens))
        engine = target.choose(request) if isinstance(target, RouterState) else target
        assert engine is not None  # every step's target is an engine or a router (checked by Network)
        ei = self.engine_index[engine]
        self._last_rid, self._last_ei = rid, ei
        self.meta[rid] = (job, s)
        self.visit_rows.append((rid, job.job_id, job.ci, s, ei))
        self.board.submitted(ei, rid, label, p + d - prefill_done)
        engine.submit(request, prefill_done)
        return rid

    def _decode(self, job: _Job, s: int, prefill_rid: int | None, p: int, d: int,
                hashes: tuple[int, ...] | None = None) -> None:
        """The decode part of a split visit: a decode engine receives it with its prompt computed."""
        if prefill_rid is not None:
            del self.meta[prefill_rid]
        self._submit(self.decode_pool, job, s, p, d, prefill_done=p, hashes=hashes)
        if prefill_rid is not None and prefill_rid in self.ctx_visit:
            sid, new, _ = self.ctx_visit.pop(prefill_rid)
            self.ctx_visit[self._last_rid] = (sid, new, self._last_ei)

    def _visit_done(self, request: Request, time: float) -> None:
        rid = request.request_id
        self.board.completed(rid)
        self.last_event = time
        d = self.handoff.pop(rid, None)
        if d is not None:                   # prefill done: move the KV cache to the decode pool
            job, s = self.meta[rid]
            p = request.prompt_tokens
            assert self.dis is not None
            h = request.block_hashes
            self.kernel.schedule(time + self.dis.transfer_s(p), lambda: self._decode(job, s, rid, p, d, h), ARRIVAL)
            return
        job, s = self.meta.pop(rid)
        visit = self.ctx_visit.pop(rid, None)
        if visit is not None:               # the stream grows by the visit's new tokens, then its output
            ctx = job.ctx
            assert ctx is not None
            ctx.append(visit[0], visit[1])
            ctx.append(ctx.new_segment(), request.decode_tokens)
        self._after_visit(job, s)
        if visit is not None and self.retain and job.active:
            self._retain(job, request, visit[2])

    def _retain(self, job: _Job, request: Request, ei: int) -> None:
        """Workflow retention: pin ``request``'s cached prompt on engine ``ei`` when the job may
        still visit it (a step in flight, or one reachable from them, targets it), until the job's
        next visit there completes, the job ends or the engine's ``ttl_s``; drop the job's pins on
        engines it can no longer reach."""
        reach = self.reach[job.ci]
        future: set[int] = set()
        for a, n in job.running.items():
            if n:
                future |= reach[a]
        if ei in self.retain and ei in future:
            kv = self.engines[ei].core.kv
            assert kv is not None
            if kv.pin_prefix(request, self.kernel.now + self.retain[ei], job.job_id):
                job.pinned.add(ei)
            else:
                job.pinned.discard(ei)
        for e in [e for e in job.pinned if e not in future]:
            self._unpin(job, e)

    def _unpin(self, job: _Job, e: int) -> None:
        kv = self.engines[e].core.kv
        assert kv is not None
        kv.unpin(job.job_id)
        job.pinned.discard(e)

    def _after_visit(self, job: _Job, s: int) -> None:
        cr = self.classes[job.ci]
        job.active -= 1
        if job.ctx is not None:
            job.running[s] -= 1
        if cr.repeat[s] > 0 and cr.route.random() < cr.repeat[s]:
            self._start(job, s)
        elif cr.routing:
            if cr.next[s]:
                u, acc = cr.route.random(), 0.0
                for j, p in cr.next[s]:
                    acc += p
                    if u < acc:
                        self._start(job, j)
                        break
        else:
            for j in cr.dependents[s]:
                job.deps[j] -= 1
                if job.deps[j] == 0:
                    self._start(job, j)
        if job.active == 0:
            for e in list(job.pinned):
                self._unpin(job, e)
            self.jobs_in_system -= 1
            self.job_rows.append((job.job_id, job.ci, job.arrival, self.kernel.now, job.visits))

    # -- running ------------------------------------------------------------------------------
    @property
    def idle(self) -> bool:
        return self.kernel.peek() is None


def _reach(wf, targets: list[frozenset[int]]) -> list[frozenset[int]]:
    """For each step: the engines of the steps a job may visit from it on, itself included
    (later DAG steps, routing targets, repeats and loops)."""
    out = []
    for i in range(len(wf.steps)):
        seen, todo = {i}, [i]
        while todo:
            for j, p in wf.successors(todo.pop()):
                if p > 0 and j not in seen:
                    seen.add(j)
                    todo.append(j)
        out.append(frozenset().union(*(targets[j] for j in seen)))
    return out


#: Bytes per visit of a network run's records (jobs, visits, requests and iterations tables,
#: all kept in memory): measured about 2 KB on the Rybko-Stolyar network, rounded up.
BYTES_PER_VISIT = 3000


def check_memory(net: Network, span: float, free: int | None = None) -> Footprint:
    """Estimate a run's memory before it starts (every visit is a record kept in memory) and
    refuse, with :class:`~llmqueue.sim.footprint.RunTooLarge`, one that cannot fit."""
    from .traffic import step_loads
    rates = {c.name: c.rate for c in net.classes}
    visits = span * sum(sl.visits_per_job * rates[sl.job_class] for sl in step_loads(net))
    fp = Footprint(visits, visits * BYTES_PER_VISIT, 0.0)
    plan_run(fp, can_stream=False, free=free, what="this network run",
             advice="lower simulation.horizon_s or duration_s, or the arrival rates",
             no_stream="a network run keeps its records in memory")
    return fp


def simulate_network(net: Network, seed: int = 0, *, horizon: float | None = None,
                     duration: float | None = None, sample_interval: float | None = None,
                     max_backlog_tokens: float | None = None, validate: bool = True,
                     progress: Callable[[int, int], None] | None = None,
                     stop: DivergenceRule | None = None) -> NetworkResult:
    """Run ``net`` (see the module docstring) and return per-job, per-visit, per-engine results.

    ``progress(done, total)``: called at every backlog sample with the simulated seconds done and
    the seconds to go (the horizon, else the duration; a drain past the duration raises both).
    ``stop`` (a :class:`~llmqueue.sim.diverging.DivergenceRule`) is asked at every sample whether
    the total backlog runs away; if so the run stops there (``stopped_early``), like
    ``max_backlog_tokens`` does at a fixed level."""
    if not isinstance(net, Network):
        raise ValueError(f"simulate_network needs a Network, got {net!r}")
    for what, x in (("horizon", horizon), ("duration", duration), ("sample_interval", sample_interval),
                    ("max_backlog_tokens", max_backlog_tokens)):
        if x is not None and not (isinstance(x, (int, float)) and math.isfinite(x) and x > 0):
            raise ValueError(f"{what} must be a finite number > 0, got {x!r}")
    if horizon is None and duration is None:
        raise ValueError("a network run needs a horizon (stop time) or a duration (arrivals stop), "
                         "else it never ends")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    span = horizon if horizon is not None else duration
    assert span is not None  # checked above
    check_memory(net, span)
    dt = sample_interval if sample_interval is not None else span / 500
    run = _NetworkRun(net, int(seed), duration, validate)
    samples: list[tuple] = []

    def sample(t: float) -> int:
        engines = tuple(e.backlog_tokens for e in run.engines)
        samples.append((t, run.jobs_in_system, engines, tuple(e.num_in_system for e in run.engines),
                        run.board.snapshot(t)))
        return sum(engines)

    sample(0.0)
    t, stopped_early = 0.0, False
    while True:
        t_next = t + dt if horizon is None else min(t + dt, horizon)
        run.kernel.run(until=t_next)
        t = t_next
        total = sample(t)
        if progress is not None:
            progress(int(t), int(max(span, t)))
        if max_backlog_tokens is not None and total > max_backlog_tokens or \
                stop is not None and stop.check(t, total):
            stopped_early = True
            break
        if horizon is not None and t >= horizon:
            break
        if horizon is None and run.idle:
            break
    end = t if horizon is not None or stopped_early else max(run.last_event, 0.0)
    for e in run.engines:
        e.flush_unfinished()
    in_flight = {j.job_id: j for j, _ in run.meta.values()}
    unfinished = [(j.job_id, j.ci, j.arrival, math.nan, j.visits) for j in in_flight.values()]
    return build_result(net, int(seed), run.engines, run.request_logs, run.iteration_logs, run.visit_rows,
                        run.job_rows, samples, end, stopped_early, unfinished)
