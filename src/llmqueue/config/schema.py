"""The one scenario model: a single engine with its workload, or a network of engines.

A scenario file has either ``engine`` + ``workload`` (one engine, the paper's setting) or
``network`` (engines, routers, job classes), plus ``seed``, ``simulation``, ``name`` and
``description``. Both forms are one :class:`Scenario`: ``kind`` says which was written, and a
single engine is a network of one (:meth:`Scenario.as_network`: one engine, one job class whose
workflow is one step). :meth:`Scenario.single_engine` gives what the fast single-engine path
needs (policy, batch time, memory, workload); it is None for a real network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import PrivateAttr, model_serializer, model_validator

from ..errors import LLMQueueError, ScenarioError
from .engine import EngineSpec
from .fields import Count, PosFloat, Strict, field_errors
from .network import NetworkSpec
from .workload import WorkloadSpec

if TYPE_CHECKING:
    from ..engine.batch_time import BatchTimeModel
    from ..memory.config import MemoryConfig
    from ..network.model import Network
    from ..policies.base import Policy
    from ..workload import Workload
    from ..workload.sessions import SessionWorkload

#: Name of the engine (and of its one workflow step) when a single engine is seen as a network.
SINGLE_ENGINE_NAME = "engine"

#: ``simulation`` keys by form: which keys each kind of scenario takes.
ENGINE_SIMULATION_KEYS = ("horizon_s", "record_composition")
NETWORK_SIMULATION_KEYS = ("horizon_s", "duration_s", "sample_interval_s", "max_backlog_tokens")


#: Why a single-engine operation refuses a network scenario.
NOT_SINGLE = ("a network scenario, and this needs a single engine (engine and workload); network "
              "scenarios run with `llmqueue simulate`, `capacity` and `fluid` (docs/networks.md)")


class SimulationSpec(Strict):
    """How long to simulate and what to record. ``duration_s``, ``sample_interval_s`` and
    ``max_backlog_tokens`` are network keys (a single engine ends arrivals with
    ``workload.duration_s``); ``record_composition`` is a single-engine key."""

    horizon_s: PosFloat | None = None
    duration_s: PosFloat | None = None
    sample_interval_s: PosFloat | None = None
    max_backlog_tokens: PosFloat | None = None
    record_composition: bool = False


@dataclass(frozen=True)
class SingleEngine:
    """What the single-engine drivers need, built: policy, batch time, KV memory (None: unlimited),
    workload, and the run's seed, horizon and whether to record batch composition."""

    policy: Policy
    batch_time: BatchTimeModel
    memory: MemoryConfig | None
    workload: Workload | SessionWorkload
    seed: int
    horizon_s: float | None
    record_composition: bool


class Scenario(Strict):
    """A scenario of either form (see the module docstring); validated strictly, with field paths."""

    engine: EngineSpec | None = None
    workload: WorkloadSpec | None = None
    network: NetworkSpec | None = None
    seed: Count = 0
    simulation: SimulationSpec = SimulationSpec()
    name: str | None = None
    description: str | None = None

    #: folder that relative paths in the scenario are resolved against (not a YAML key)
    _base: Path = PrivateAttr(default=Path("."))
    #: where the scenario came from (a file path), for error messages
    _source: str | None = PrivateAttr(default=None)
    #: ((trace, base), requests) once the trace is read (it is read at most once per scenario)
    _trace: Any = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _form(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if data.get("network") is not None:
            problems: list[tuple[tuple, str, object]] = [
                ((key,), (f"a network scenario declares its engines and job classes under "
                          f"'network' (docs/networks.md); drop '{key}'"), data[key])
                for key in ("engine", "workload") if key in data]
            problems += [(("simulation", key), "a single-engine key: drop it from a network scenario",
                          v) for key, v in _sim(data).items()
                         if key in ENGINE_SIMULATION_KEYS and key not in NETWORK_SIMULATION_KEYS]
            if problems:
                raise field_errors(cls.__name__, problems)
            return data
        problems = [(("simulation", key), ("a network key: a single-engine scenario ends its arrivals with "
                     "workload.duration_s and takes only simulation.horizon_s and record_composition"), v)
                    for key, v in _sim(data).items()
                    if key in NETWORK_SIMULATION_KEYS and key not in ENGINE_SIMULATION_KEYS]
        if "workload" not in data:
            problems.append((("workload",), "Field required (or give 'network' for a network scenario)", None))
        if problems:
            raise field_errors(cls.__name__, problems)
        return {**data, "engine": data.get("engine") or {}}

    @model_validator(mode="after")
    def _network_checks(self) -> Scenario:
        if self.network is not None and self.simulation.horizon_s is None and self.simulation.duration_s is None:
            raise field_errors(type(self).__name__, [(("simulation",), ("give horizon_s (stop time) or duration_s "
                                                      "(arrivals stop), else the run never ends"), None)])
        if self.engine is not None and self.workload is not None and self.engine.class_priority \
                and self.workload.trace is None:
            known = {self.workload.job_class}
            bad: list[tuple[tuple, str, object]] = [(("engine", "class_priority", j), _not_a_class(name, known), name)
                   for j, name in enumerate(self.engine.class_priority) if name not in known]
            if bad:
                raise field_errors(type(self).__name__, bad)
        return self

    @model_serializer(mode="wrap")
    def _dump_written_form(self, handler) -> dict:
        """Dump only the keys of the form this scenario has (as the file would write them)."""
        d = handler(self)
        keys: tuple[str, ...]
        if self.network is None:
            d.pop("network", None)
            keys = ENGINE_SIMULATION_KEYS
        else:
            d.pop("engine", None)
            d.pop("workload", None)
            keys = NETWORK_SIMULATION_KEYS
        if isinstance(d.get("simulation"), dict):
            d["simulation"] = {k: v for k, v in d["simulation"].items() if k in keys}
        return d

    # -- the form -----------------------------------------------------------------------------
    @property
    def kind(self) -> Literal["engine", "network"]:
        """``"engine"`` for a single-engine scenario, ``"network"`` for a network scenario."""
        return "network" if self.network is not None else "engine"

    @property
    def is_network(self) -> bool:
        return self.network is not None

    @property
    def base(self) -> Path:
        """Folder that relative paths (traces, length files) are resolved against."""
        return self._base

    def located(self, base: str | Path, source: str | None = None) -> Scenario:
        """This scenario with relative paths resolved against ``base`` (returns self)."""
        self._base = Path(base)
        if source is not None:
            self._source = source
        return self

    def _where(self) -> str:
        return self._source or self.name or "scenario"

    def single_specs(self) -> tuple[EngineSpec, WorkloadSpec]:
        """The engine and workload specs of a single-engine scenario (a network: one clear
        ScenarioError)."""
        if self.engine is None or self.workload is None:
            raise ScenarioError(f"{self._where()}: {NOT_SINGLE}")
        return self.engine, self.workload

    # -- single engine ------------------------------------------------------------------------
    def trace_requests(self):
        """The workload's trace, read once (None without a trace)."""
        _, w = self.single_specs()
        if w.trace is None:
            return None
        key = (w.trace, self._base)
        if self._trace is None or self._trace[0] != key:   # a copy with another trace reads its own
            self._trace = (key, w.read_trace(self._base))
        return self._trace[1]

    def check_trace_classes(self) -> None:
        """With a trace and ``class_priority``: every class named must occur in the trace."""
        if self.engine is None or self.workload is None:
            return
        if not self.engine.class_priority or self.workload.trace is None:
            return
        jc = self.trace_requests().job_class
        known = {jc} if isinstance(jc, str) else set(jc.tolist())
        if self.workload.initial_requests:
            known.add(self.workload.job_class)
        for j, name in enumerate(self.engine.class_priority):
            if name not in known:
                raise ScenarioError(f"{self._where()}: engine.class_priority.{j}: {_not_a_class(name, known)}")

    @property
    def has_sessions(self) -> bool:
        """A single-engine scenario whose workload is multi-turn sessions (a closed loop)."""
        return self.workload is not None and self.workload.sessions is not None

    def build_workload(self) -> Workload:
        _, w = self.single_specs()
        if w.sessions is not None:
            raise ScenarioError(f"{self._where()}: workload.sessions: a session workload's turns arrive after "
                                f"earlier turns complete (a closed loop); only `llmqueue simulate` (the engine "
                                f"core) runs it, this command needs a fixed request stream")
        return self._built("workload", lambda: w.build(self._base, self.trace_requests()))

    def build_sessions(self) -> SessionWorkload:
        """The :class:`~llmqueue.workload.sessions.SessionWorkload` of a session scenario."""
        _, w = self.single_specs()
        if w.sessions is None:
            raise ScenarioError(f"{self._where()}: workload.sessions: this scenario has no sessions")
        sessions = w.sessions
        return self._built("workload.sessions", lambda: sessions.build(w, self._base))

    def build_batch_time(self) -> BatchTimeModel:
        engine, _ = self.single_specs()
        return self._built("engine.batch_time", engine.batch_time.build)

    def build_policy(self) -> Policy:
        engine, _ = self.single_specs()
        return self._built("engine", engine.build_policy)

    def build_memory(self) -> MemoryConfig | None:
        engine, _ = self.single_specs()
        return self._built("engine.memory", engine.build_memory)

    def _built(self, where: str, build):
        """``build()``; a plain ValueError becomes a ScenarioError naming the file and ``where``
        (the library's own errors, a trace's ``file:line`` ones included, pass unchanged)."""
        try:
            return build()
        except LLMQueueError:
            raise
        except ValueError as e:
            raise ScenarioError(f"{self._where()}: {where}: {e}") from None

    def single_engine(self) -> SingleEngine | None:
        """Policy, batch time, memory and workload for the single-engine path; None for a network."""
        if self.network is not None:
            return None
        workload = self.build_sessions() if self.has_sessions else self.build_workload()
        return SingleEngine(self.build_policy(), self.build_batch_time(), self.build_memory(),
                            workload, self.seed, self.simulation.horizon_s,
                            self.simulation.record_composition)

    # -- network ------------------------------------------------------------------------------
    def as_network(self) -> Scenario:
        """This scenario in network form: itself for a network; for a single engine, a network of
        one engine named ``engine`` and one job class (``workload.job_class``) whose workflow is
        one step labelled with that class, so ``class_priority`` keeps its meaning.

        Only a generated workload has a network form; a trace, initial requests, ``num_requests``
        or shared prefixes raise a ScenarioError naming the key.
        """
        if self.network is not None:
            return self
        engine, w = self.single_specs()
        for key, value in (("trace", w.trace), ("initial_requests", w.initial_requests),
                           ("num_requests", w.num_requests), ("prefix", w.prefix), ("sessions", w.sessions),
                           ("simulation.record_composition", self.simulation.record_composition)):
            if value:
                where = key if key.startswith("simulation") else f"workload.{key}"
                raise ScenarioError(f"{self._where()}: {where}: has no network form (a network's job classes "
                                    f"are generated by an arrival process until a horizon or duration)")
        if w.arrival is None or w.prompt_tokens is None or w.decode_tokens is None:
            raise ScenarioError(f"{self._where()}: workload.arrival: a network needs generated arrivals")
        step = {"engine": SINGLE_ENGINE_NAME, "label": w.job_class,
                "prompt_tokens": w.prompt_tokens.model_dump(), "decode_tokens": w.decode_tokens.model_dump()}
        data = {"network": {"engines": [{"name": SINGLE_ENGINE_NAME, **engine.model_dump()}],
                            "classes": [{"name": w.job_class, "arrival": w.arrival.model_dump(),
                                         "workflow": {"chain": [step]}}]},
                "seed": self.seed, "name": self.name, "description": self.description,
                "simulation": {"horizon_s": self.simulation.horizon_s, "duration_s": w.duration_s}}
        return Scenario.model_validate(data).located(self._base, self._source)

    def build_network(self) -> Network:
        """The :class:`~llmqueue.network.model.Network` (a single engine: its network of one)."""
        spec = self.as_network().network
        assert spec is not None   # as_network() always has one
        try:
            return spec.build(self._base)
        except LLMQueueError:
            raise
        except ValueError as e:   # its message starts with the part at fault (network.classes.0.workflow)
            raise ScenarioError(f"{self._where()}: {e}") from None


def _sim(data: dict) -> dict:
    sim = data.get("simulation")
    return sim if isinstance(sim, dict) else {}


def _not_a_class(name: str, known) -> str:
    return f"{name!r} is not a job class of this workload (classes: {', '.join(sorted(known))})"
