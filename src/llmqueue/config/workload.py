"""The ``workload`` block of a single-engine scenario: generated requests, a trace, initial requests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from ..engine.limits import MAX_REQUESTS, too_large
from ..workload import SharedPrefix, Workload, read_trace_arrays
from .fields import ArrivalSpec, LengthSpec, PosFloat, PosTokenCount, RequestCount, Strict, TokenCount, resolve


class InitialRequestSpec(Strict):
    prompt_tokens: TokenCount = 0
    decode_tokens: TokenCount
    label: str | None = None


class PrefixSpec(Strict):
    """Shared prompt prefixes of the generated requests: ``groups`` prefixes of ``tokens`` tokens."""

    groups: Annotated[int, Field(ge=1, le=MAX_REQUESTS)]
    tokens: PosTokenCount


class WorkloadSpec(Strict):
    arrival: ArrivalSpec | None = None
    trace: str | None = None
    prompt_tokens: LengthSpec | None = None
    decode_tokens: LengthSpec | None = None
    initial_requests: list[InitialRequestSpec] = Field(default_factory=list)
    num_requests: RequestCount | None = None
    duration_s: PosFloat | None = None
    job_class: str = "default"
    prefix: PrefixSpec | None = None

    @model_validator(mode="after")
    def _consistent(self) -> WorkloadSpec:
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
        return read_trace_arrays(resolve(base, self.trace)) if self.trace is not None else None

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
