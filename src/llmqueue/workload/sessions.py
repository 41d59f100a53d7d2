"""Multi-turn sessions: a closed-loop workload source (chat and agent conversations).

Sessions arrive by an open process (``arrival``, e.g. Poisson at a rate). A session has
``turns`` turns (a length distribution, at least 1). Turn 1's prompt is ``first_prompt_tokens``;
turn k's prompt is turn k-1's prompt, plus turn k-1's answer (its ``decode_tokens``), plus
``new_tokens`` new user or tool tokens. Turn k arrives ``think_time`` seconds after turn k-1
completes, so within a session the load is a closed loop: the next arrival depends on when the
engine finished the previous turn.

A :class:`SessionWorkload` is the scenario's description; :meth:`SessionWorkload.source` gives
the :class:`SessionSource` of one run. The driver (:func:`llmqueue.sim.simulate.simulate`) asks
the source for the next session start (:meth:`SessionSource.next_start`) and reports every
completion to it (:meth:`SessionSource.completed`), which returns the session's next turn, if
any: the same event loop, with arrivals that depend on completions.

Randomness: one SeedSequence per run, child streams 0: session arrival times, 1: turns,
2: first prompts, 3: new tokens, 4: decode tokens, 5: think times, 6: block-hash seeds. Everything
of a session is drawn when the session starts (in session order), so the draws never depend on
the order in which turns complete: same seed, same sessions.

Block hashes (:attr:`Request.block_hashes`): a session's turns are one growing token stream, so
block ``j`` of a turn's prompt holding ``f`` tokens of the stream has the id
``H(session seed, j, f)`` (``f == hash_block_tokens`` for a full block). Turn k's full blocks
over turn k-1's prompt and answer therefore have exactly turn k-1's ids (and its full prompt
blocks are a prefix of turn k's chain); the partial last block differs, as its content does.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ..engine.request import Request
from .arrivals import ArrivalProcess
from .lengths import LengthDistribution
from .workload import child_generators

#: Session tables' columns: one row per session.
SESSION_COLUMNS = ("session_id", "arrival_time", "turns", "turns_done", "completion_time", "session_time",
                   "prompt_tokens_last", "decode_tokens_total")
#: Which session and turn each request is (one row per request).
TURN_COLUMNS = ("request_id", "session_id", "turn")

THINK_KINDS = ("exponential", "fixed")


@dataclass(frozen=True)
class ThinkTime:
    """Seconds between a turn's completion and the next turn's arrival: ``exponential`` with
    mean ``mean_s``, or ``fixed`` at ``mean_s``."""

    mean_s: float
    kind: str = "exponential"

    def __post_init__(self) -> None:
        if not (isinstance(self.mean_s, (int, float)) and math.isfinite(self.mean_s) and self.mean_s >= 0):
            raise ValueError(f"think_time mean_s must be a finite number >= 0, got {self.mean_s!r}")
        if self.kind not in THINK_KINDS:
            raise ValueError(f"think_time kind must be one of {', '.join(THINK_KINDS)}, got {self.kind!r}")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.kind == "fixed" or self.mean_s == 0:
            return np.full(n, float(self.mean_s))
        return rng.exponential(self.mean_s, n)


@dataclass(frozen=True)
class SessionWorkload:
    """Sessions of turns (see the module docstring), stopped after ``num_sessions`` sessions or
    at ``duration_s`` (no session starts after it; started sessions run to their end)."""

    arrival: ArrivalProcess
    turns: LengthDistribution
    first_prompt_tokens: LengthDistribution
    new_tokens: LengthDistribution
    decode_tokens: LengthDistribution
    think_time: ThinkTime = field(default_factory=lambda: ThinkTime(0.0))
    num_sessions: int | None = None
    duration_s: float | None = None
    hash_block_tokens: int = 16
    job_class: str = "default"

    def __post_init__(self) -> None:
        if self.num_sessions is None and self.duration_s is None:
            raise ValueError("a session workload never ends: give num_sessions or duration_s (or both)")
        if self.num_sessions is not None and not (isinstance(self.num_sessions, (int, np.integer))
                                                  and self.num_sessions >= 0):
            raise ValueError(f"num_sessions must be an integer >= 0, got {self.num_sessions!r}")
        if self.duration_s is not None and not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise ValueError(f"duration_s must be a finite number of seconds > 0, got {self.duration_s!r}")
        if self.turns.min_value < 1:
            raise ValueError("sessions.turns: every session needs at least one turn (minimum >= 1)")
        if self.first_prompt_tokens.min_value + self.decode_tokens.min_value < 1:
            raise ValueError("sessions: first_prompt_tokens and decode_tokens can both be 0, and a turn needs "
                             "at least one token")
        if not (isinstance(self.hash_block_tokens, (int, np.integer)) and self.hash_block_tokens >= 1):
            raise ValueError(f"hash_block_tokens must be an integer >= 1, got {self.hash_block_tokens!r}")

    @property
    def mean_turns(self) -> float:
        return float(self.turns.mean)

    @property
    def max_prompt_tokens(self) -> int | None:
        """Largest prompt a turn can have (None if any part is unbounded)."""
        parts = (self.turns.max_value, self.first_prompt_tokens.max_value, self.new_tokens.max_value,
                 self.decode_tokens.max_value)
        if any(p is None for p in parts):
            return None
        t, p0, n, d = (int(x) for x in parts)  # type: ignore[arg-type]
        return p0 + (t - 1) * (n + d)

    def source(self, seed: int | np.random.SeedSequence) -> SessionSource:
        """The source of one run (same seed, same sessions)."""
        return SessionSource(self, seed)

    def requests(self, seed: int | np.random.SeedSequence):
        """A session workload has no request stream fixed in advance (turns arrive after
        completions): commands that replay a stream refuse it."""
        from ..errors import ScenarioError
        raise ScenarioError("a session workload's turns arrive after the previous turn completes (a closed "
                            "loop): it runs on the engine core (`llmqueue simulate`), not as a fixed request stream")

    arrays = requests


@dataclass
class _Session:
    sid: int
    arrival: float
    prompts: list[int]
    decodes: list[int]
    thinks: list[float]
    key: bytes
    turn: int = 0                # turns completed
    completion: float = math.nan


def block_hash(key: bytes, j: int, fill: int) -> int:
    """The id of block ``j`` holding ``fill`` tokens of the stream keyed ``key`` (63 bits)."""
    h = hashlib.blake2b(key + j.to_bytes(8, "little") + fill.to_bytes(8, "little"), digest_size=8)
    return int.from_bytes(h.digest(), "little") >> 1


def prompt_hashes(key: bytes, prompt_tokens: int, block: int) -> tuple[int, ...]:
    """The block-hash chain of a prompt made of the first ``prompt_tokens`` tokens of a stream."""
    full, rest = divmod(prompt_tokens, block)
    out = [block_hash(key, j, block) for j in range(full)]
    if rest:
        out.append(block_hash(key, full, rest))
    return tuple(out)


class SessionSource:
    """One run of a :class:`SessionWorkload`: session starts in time order, and each session's
    next turn when its previous one completes. Request ids count 0, 1, ... in the order turns are
    issued (session starts and completions, which the event loop orders deterministically)."""

    def __init__(self, wl: SessionWorkload, seed: int | np.random.SeedSequence) -> None:
        self.wl = wl
        (self._rng_t, self._rng_k, self._rng_p, self._rng_n, self._rng_d, self._rng_z,
         self._rng_h) = child_generators(seed, 7)
        self._times: Iterator[float] = wl.arrival.times(self._rng_t)
        self.sessions: list[_Session] = []
        self.turn_rows: list[tuple[int, int, int]] = []
        self._of: dict[int, _Session] = {}
        self._next_id = 0
        self._closed = False

    # -- what the driver calls ---------------------------------------------------------------
    def next_start(self) -> Request | None:
        """The first turn of the next session (its arrival is the session's), or None when no
        session starts any more."""
        wl = self.wl
        if self._closed or (wl.num_sessions is not None and len(self.sessions) >= wl.num_sessions):
            self._closed = True
            return None
        t = next(self._times)
        if wl.duration_s is not None and t > wl.duration_s:
            self._closed = True
            return None
        k = int(wl.turns.sample(self._rng_k, 1)[0])
        p0 = int(wl.first_prompt_tokens.sample(self._rng_p, 1)[0])
        new = wl.new_tokens.sample(self._rng_n, k - 1).tolist() if k > 1 else []
        dec = wl.decode_tokens.sample(self._rng_d, k).tolist()
        think = wl.think_time.sample(self._rng_z, k - 1).tolist() if k > 1 else []
        if p0 + dec[0] == 0:            # a turn needs a token: an empty first turn asks one token
            dec[0] = 1
        prompts = [p0]
        for i in range(1, k):
            prompts.append(prompts[-1] + dec[i - 1] + int(new[i - 1]))
        key = int(self._rng_h.integers(0, 2 ** 63)).to_bytes(8, "little")
        s = _Session(len(self.sessions), t, prompts, [int(x) for x in dec], [float(x) for x in think], key)
        self.sessions.append(s)
        return self._turn(s, t)

    def completed(self, request: Request, time: float) -> Request | None:
        """A turn completed at ``time``: the session's next turn (arriving a think time later),
        or None when the session is over (or ``request`` is not a turn of this source)."""
        s = self._of.pop(request.request_id, None)
        if s is None:
            return None
        s.turn += 1
        if s.turn == len(s.prompts):
            s.completion = time
            return None
        return self._turn(s, time + s.thinks[s.turn - 1])

    @property
    def done(self) -> bool:
        """No session will start and none is in progress."""
        return self._closed and not self._of

    # -- tables ------------------------------------------------------------------------------
    def session_rows(self) -> list[tuple]:
        """One row per session started (:data:`SESSION_COLUMNS`); NaN completion if unfinished."""
        return [(s.sid, s.arrival, len(s.prompts), s.turn, s.completion, s.completion - s.arrival,
                 s.prompts[-1], sum(s.decodes)) for s in self.sessions]

    def tables(self):
        """``(sessions, turns)`` DataFrames."""
        import pandas as pd
        return (pd.DataFrame(self.session_rows(), columns=list(SESSION_COLUMNS)),
                pd.DataFrame(self.turn_rows, columns=list(TURN_COLUMNS)))

    # -- internals ---------------------------------------------------------------------------
    def _turn(self, s: _Session, t: float) -> Request:
        rid = self._next_id
        self._next_id += 1
        k = s.turn
        p, d = s.prompts[k], s.decodes[k]
        b = self.wl.hash_block_tokens
        req = Request(rid, t, p, d, self.wl.job_class, None,
                      block_hashes=prompt_hashes(s.key, p, b) if p else None, hash_block_tokens=b)
        self._of[rid] = s
        self.turn_rows.append((rid, s.sid, k + 1))
        return req
