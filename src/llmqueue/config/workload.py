"""The ``workload`` block of a single-engine scenario: generated requests, a trace, initial requests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from ..engine.limits import MAX_REQUESTS, too_large
from ..workload import SharedPrefix, Workload, read_trace_arrays
from .fields import (
    ArrivalSpec,
    LengthSpec,
    NonNegFloat,
    PosFloat,
    PosTokenCount,
    RequestCount,
    Strict,
    TokenCount,
    resolve,
)


class InitialRequestSpec(Strict):
    prompt_tokens: TokenCount = 0
    decode_tokens: TokenCount
    label: str | None = None


class PrefixSpec(Strict):
    """Shared prompt prefixes of the generated requests: ``groups`` prefixes of ``tokens`` tokens."""

    groups: Annotated[int, Field(ge=1, le=MAX_REQUESTS)]
    tokens: PosTokenCount


class ThinkTimeSpec(Strict):
    """Seconds from a turn's completion to the session's next turn: exponential or fixed."""

    mean_s: NonNegFloat
    kind: Literal["exponential", "fixed"] = "exponential"


class SessionSpec(Strict):
    """Multi-turn sessions (docs/agentic.md): ``workload.arrival`` is the session arrival process,
    ``workload.prompt_tokens`` the first turn's prompt and ``workload.decode_tokens`` every turn's
    answer; each later turn adds the previous answer and ``new_tokens`` to the previous prompt and
    arrives ``think_time`` after the previous turn completes. ``num_sessions`` and/or
    ``workload.duration_s`` stop new sessions."""

    turns: LengthSpec
    new_tokens: LengthSpec
    think_time: ThinkTimeSpec = ThinkTimeSpec(mean_s=0.0)
    num_sessions: RequestCount | None = None
    hash_block_tokens: PosTokenCount = 16

    def build(self, w: WorkloadSpec, base: Path):
        from ..workload.sessions import SessionWorkload, ThinkTime
        assert w.arrival is not None and w.prompt_tokens is not None and w.decode_tokens is not None
        return SessionWorkload(w.arrival.build(), self.turns.build(base), w.prompt_tokens.build(base),
                               self.new_tokens.build(base), w.decode_tokens.build(base),
                               ThinkTime(self.think_time.mean_s, self.think_time.kind), self.num_sessions,
                               w.duration_s, self.hash_block_tokens, w.job_class)


class WorkloadSpec(Strict):
    arrival: ArrivalSpec | None = None
    trace: str | None = None
    trace_format: Literal["auto", "csv", "mooncake"] = "auto"   # auto: Mooncake for .jsonl or '{'
    prompt_tokens: LengthSpec | None = None
    decode_tokens: LengthSpec | None = None
    initial_requests: list[InitialRequestSpec] = Field(default_factory=list)
    num_requests: RequestCount | None = None
    duration_s: PosFloat | None = None
    job_class: str = "default"
    prefix: PrefixSpec | None = None
    sessions: SessionSpec | None = None

    @model_validator(mode="after")
    def _consistent(self) -> WorkloadSpec:
        if self.sessions is not None:
            given = [k for k in ("trace", "prefix", "num_requests") if getattr(self, k) is not None]
            given += ["initial_requests"] if self.initial_requests else []
            if given:
                raise ValueError(f"'sessions' generates its own turns: drop {', '.join(given)} (end the workload "
                                 f"with sessions.num_sessions or duration_s)")
            if self.arrival is None or self.prompt_tokens is None or self.decode_tokens is None:
                raise ValueError("'sessions' needs 'arrival' (sessions start by it), 'prompt_tokens' (the first "
                                 "turn's prompt) and 'decode_tokens' (every turn's answer)")
            if self.sessions.num_sessions is None and self.duration_s is None:
                raise ValueError("a session workload needs sessions.num_sessions or duration_s (else it never ends)")
            return self
        if self.prefix is not None and self.arrival is None:
            raise ValueError("'prefix' applies to generated requests (give 'arrival'); a trace gives "
                             "prefixes in its prefix_id,prefix_tokens columns")
        if self.trace is not None and self.arrival is not None:
            raise ValueError("give either 'arrival' (a generated workload) or 'trace' (replay), not both")
        if self.arrival is not None:
            if self.prompt_tokens is None or self.decode_tokens is None:
                raise ValueError("a generated workload needs 'prompt_tokens' and 'decode_tokens' distributions")
            if self.num_requests is None and self.duration_s is None:
                raise ValueError("a generated workload needs 'num_requests' or 'duration_s' (else it never ends)")
        if self.trace is None and self.arrival is None and not self.initial_requests:
            raise ValueError("the workload is empty: give 'arrival' with length distributions, "
                             "'trace', or 'initial_requests'")
        if len(self.initial_requests) > MAX_REQUESTS:
            raise ValueError(too_large("the number of initial_requests", len(self.initial_requests), MAX_REQUESTS))
        if self.arrival is not None and self.num_requests is None and self.duration_s is not None:
            expected = self.arrival.rate * self.duration_s
            if expected > MAX_REQUESTS:
                raise ValueError(too_large(f"arrival.rate x duration_s (the expected number of requests, "
                                           f"{self.arrival.rate:g}/s x {self.duration_s:g} s)",
                                           f"{expected:.3g}", MAX_REQUESTS))
        for i, r in enumerate(self.initial_requests):
            if r.prompt_tokens + r.decode_tokens == 0:
                raise ValueError(f"initial_requests[{i}] has no tokens (prompt 0 and decode 0)")
        return self

    def read_trace(self, base: Path):
        """The trace's requests (None without a trace)."""
        return read_trace_arrays(resolve(base, self.trace), self.trace_format) if self.trace is not None else None

    def build(self, base: Path, trace=None) -> Workload:
        """The :class:`Workload`; ``trace`` is the already-read trace, if any (else it is read here)."""
        if trace is None:
            trace = self.read_trace(base)
        return Workload(
            arrival=self.arrival.build() if self.arrival is not None else None,
            prompt_tokens=self.prompt_tokens.build(base) if self.prompt_tokens is not None else None,
            decode_tokens=self.decode_tokens.build(base) if self.decode_tokens is not None else None,
            trace=trace,
            initial=tuple((r.prompt_tokens, r.decode_tokens, r.label) for r in self.initial_requests),
            num_requests=self.num_requests, duration_s=self.duration_s, job_class=self.job_class,
            prefix=SharedPrefix(self.prefix.groups, self.prefix.tokens) if self.prefix is not None else None)
