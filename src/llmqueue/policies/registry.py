"""The policy registry: every built-in policy declared once, with what it can do.

Everything that lists or checks policy names derives from :data:`REGISTRY`: the command line's
choices and ``check-policy``, scenario and sweep validation, the fast core's check
(:func:`has_fast_path`) and the policy table of the README (:mod:`.table`, tested to be current).
A policy's parameters are its token budget and k_max; :func:`make_policy` builds one by name.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import PolicyError
from .base import Policy
from .memory_aware import VLLMV1, ThresholdAdmission
from .real_systems import FasterTransformer, Orca, SarathiServe, VanillaVLLM


@dataclass(frozen=True)
class PolicyInfo:
    """One built-in policy and its declared capabilities.

    ``memory_aware``: reads free KV memory when the engine models it (else behaves as documented
    without memory). ``fast_path``: the event-skipping core (``llmqueue.sim.fast``) runs it
    exactly, with a batch time that depends on the load only. ``mixes_prefill_decode``: one
    batch may hold prompt chunks and decode tokens. ``requires``: optional distributions that
    must be installed to build it. Work-conservation and whole-prompt scheduling are the
    class's own declarations (:attr:`Policy.work_conserving`, :attr:`Policy.whole_prefill`).
    """

    name: str
    cls: type[Policy]
    label: str
    description: str
    mixes_prefill_decode: bool
    memory_aware: bool = False
    fast_path: bool = False
    requires: tuple[str, ...] = ()

    @property
    def work_conserving(self) -> bool:
        return bool(self.cls.work_conserving)

    @property
    def whole_prefill(self) -> bool:
        return bool(self.cls.whole_prefill)

    @classmethod
    def of(cls, policy: type[Policy], *, fast_path: bool = False, requires: tuple[str, ...] = ()) -> PolicyInfo:
        """The entry of a policy class, from what the class declares about itself (its name,
        label, one-line description, whether it mixes prefill and decode or reads KV memory)."""
        return cls(policy.name, policy, policy.label, policy.description, policy.mixes_prefill_decode,
                   memory_aware=policy.memory_aware, fast_path=fast_path, requires=requires)

    def missing(self) -> list[str]:
        """The optional dependencies in ``requires`` that are not installed."""
        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    def build(self, token_budget: int, max_batch_size: int | None = None) -> Policy:
        missing = self.missing()
        if missing:
            raise PolicyError(f"policy {self.name!r} needs {', '.join(missing)}: pip install {' '.join(missing)}")
        return self.cls(token_budget=token_budget, max_batch_size=max_batch_size)


REGISTRY: tuple[PolicyInfo, ...] = (
    PolicyInfo.of(FasterTransformer, fast_path=True),
    PolicyInfo.of(VanillaVLLM, fast_path=True),
    PolicyInfo.of(Orca, fast_path=True),
    PolicyInfo.of(SarathiServe, fast_path=True),
    PolicyInfo.of(VLLMV1),
    PolicyInfo.of(ThresholdAdmission),
)

_BY_NAME = {info.name: info for info in REGISTRY}


def policy_infos() -> Iterator[PolicyInfo]:
    """Every registered policy, in the registry's (documentation) order."""
    return iter(REGISTRY)


def policy_names(*, memory_aware: bool | None = None, fast_path: bool | None = None) -> list[str]:
    """The registered names; ``memory_aware`` / ``fast_path`` (True or False) filter on a capability."""
    return [i.name for i in REGISTRY
            if (memory_aware is None or i.memory_aware == memory_aware)
            and (fast_path is None or i.fast_path == fast_path)]


def policy_info(name: str) -> PolicyInfo:
    """The registry entry of ``name`` (case-insensitive); an unknown name lists the known ones."""
    try:
        return _BY_NAME[name.lower()]
    except (KeyError, AttributeError):
        raise PolicyError(f"unknown policy {name!r}; choose one of {', '.join(policy_names())}") from None


def make_policy(name: str, token_budget: int, max_batch_size: int | None = None) -> Policy:
    """Build a built-in policy by name; an unknown name lists the known ones."""
    return policy_info(name).build(token_budget, max_batch_size)


def has_fast_path(policy: Policy) -> bool:
    """Whether the fast core runs this policy object exactly: a registered fast-path class itself
    (not a subclass or a wrapper such as ClassPriority, whose plans the core does not know)."""
    return any(info.fast_path and type(policy) is info.cls for info in REGISTRY)


#: The built-in policies without memory awareness, name -> class (derived from the registry).
POLICIES: dict[str, type[Policy]] = {i.name: i.cls for i in REGISTRY if not i.memory_aware}
#: The memory-aware policy names (derived from the registry).
MEMORY_POLICIES: tuple[str, ...] = tuple(policy_names(memory_aware=True))
