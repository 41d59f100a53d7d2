"""What the fast core carries from one epoch to the next, and the policy in the form it needs.

The core (:mod:`.core`) runs in epochs of at most a few ten thousand iterations; between epochs
the driver turns the epoch's raw columns into records (:mod:`.finalize`), reads more input and
trims memory. :class:`CoreState` is everything the loop needs to resume.

Decoders (requests whose prefill is done and that have decode tokens left) are never touched one
by one while every one of them is served at every decode iteration. They share one clock, the
decode step ``G`` (the number of iterations so far that carried decode tokens): a request that
starts decoding when the clock reads ``e`` with ``d`` tokens to go emits its tokens at steps
``e+1 .. e+d`` and leaves at step ``fin = e + d``. ``ecnt[fin]`` counts the decoders due at each
step, so a step costs one dictionary lookup whatever the number of decoders.

When the budget or k_max lets only the first ``s`` decoders (FCFS) into a batch, the decoders
split into ``A`` (served, on the clock) and ``W`` (waiting, frozen with ``wleft`` tokens to go):
see :mod:`.decoders`.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field

from ...engine.batch_time import BatchTimeModel
from ...policies.base import Policy
from ...policies.real_systems import FasterTransformer, Orca, SarathiServe, VanillaVLLM
from ...policies.registry import has_fast_path

#: Policy kinds, as the core's branches know them.
FT, VLLM, ORCA, SARATHI = 0, 1, 2, 3
_KINDS = {FasterTransformer: FT, VanillaVLLM: VLLM, Orca: ORCA, SarathiServe: SARATHI}


def fast_path_reason(policy: Policy, batch_time: BatchTimeModel) -> str | None:
    """None if the fast core can run this engine exactly, else why not (for error messages)."""
    if not has_fast_path(policy):
        return (f"the fast core implements FasterTransformer, VanillaVLLM, Orca and SarathiServe "
                f"exactly (not subclasses or wrappers); got {type(policy).__name__}")
    if not batch_time.load_only:
        return ("the fast core needs a batch time that depends on the token load only; "
                f"{batch_time.describe()} depends on the batch composition")
    return None


class LoadTimes(dict):
    """t(b) by token load b, computed the first time a load occurs: ``T[b]`` as a table would give
    it, but sized by the loads that occur, not by the budget (a budget of 10^12 tokens costs
    nothing until batches that large exist)."""

    def __init__(self, batch_time: BatchTimeModel) -> None:
        super().__init__()
        self.batch_time = batch_time

    def __missing__(self, b: int) -> float:
        t = self[b] = float(self.batch_time.load_time(b))
        return t


@dataclass(frozen=True)
class PolicySpec:
    """A built-in policy reduced to numbers: kind, budget B, k_max K, and t(b) for b = 0..B."""

    kind: int
    B: int
    K: int
    capD: int                  # most decode tokens one batch can hold: min(B, K)
    T: LoadTimes               # T[b] = batch_time.load_time(b), the generic engine's float
    horizon: float             # +inf when the run has no horizon

    @classmethod
    def of(cls, policy: Policy, batch_time: BatchTimeModel, horizon: float | None) -> PolicySpec:
        B = policy.token_budget
        K = policy.slots
        T = LoadTimes(batch_time)
        return cls(_KINDS[type(policy)], B, K, min(B, K), T,
                   math.inf if horizon is None else float(horizon))


@dataclass
class CoreState:
    """The loop's state between epochs (see the module docstring for the decode clock)."""

    now: float = 0.0
    G: int = 0                 # decode steps so far
    C: int = 0                 # prefill tokens processed so far (position in the prefill stream)
    h: int = 0                 # first prefill-stream request whose prefill is not done
    qa: int = 0                # prefill-stream requests admitted
    ai: int = 0                # requests admitted
    zq: int = 0                # prompt-0 requests admitted (position in feed.zidx)
    nA: int = 0                # decoders on the clock
    nW: int = 0                # decoders waiting (budget or k_max binding)
    fresh: int = 0             # decoders that joined A since the last step (no gap at the next one)
    processed: int = 0         # tokens processed (counted by finalize, epoch by epoch)
    completed: int = 0         # requests completed (idem)
    iterations: int = 0
    finished: bool = False     # no more work (all done, or the horizon reached)
    ecnt: dict = field(default_factory=dict)          # fin step -> decoders of A due then
    decend: array = field(default_factory=lambda: array("d", [math.nan]))  # end time of step g
    gbase: int = 0             # decend[g - gbase]
    # truncated regime (see .decoders)
    trunc: bool = False
    a_order: list = field(default_factory=list)       # A's admission indices, sorted, lazily cleaned
    W: list = field(default_factory=list)             # heap of waiting decoders' admission indices
    calm: int = 0              # steps in a row with nobody waiting (to leave the regime)
    wleft: dict = field(default_factory=dict)         # waiting decoder -> tokens left
    seg: dict = field(default_factory=dict)           # decoder moved back to A -> step it rejoined
    ftok: dict = field(default_factory=dict)          # decoder once moved to W -> first token time
    ltok: dict = field(default_factory=dict)          # decoder in W -> its last token time
    gaps: list = field(default_factory=list)          # (step, last token time) of resumed decoders
