"""The library's errors: every failure a user can cause is an :class:`LLMQueueError`.

The command line prints any of them as one line (markup-escaped) and exits with status 2;
library callers catch ``LLMQueueError`` once instead of a list of types. The subclasses keep
their historical built-in base (``ValueError`` or ``RuntimeError``) so existing ``except``
clauses still work.
"""

from __future__ import annotations


class LLMQueueError(Exception):
    """Base class of every error the library raises on purpose."""


class ScenarioError(LLMQueueError, ValueError):
    """A scenario file or override is invalid (the message names the field path)."""


class TraceError(LLMQueueError, ValueError):
    """A malformed trace: ``path:line:column (name): reason`` (line and column 1-based)."""

    def __init__(self, path: str, line: int, reason: str, column: int | None = None,
                 column_name: str | None = None) -> None:
        self.path, self.line, self.column, self.column_name, self.reason = (
            path, line, column, column_name, reason)
        where = f"{path}:{line}" + (f":{column}" if column is not None else "")
        if column_name is not None:
            where += f" ({column_name})"
        super().__init__(f"{where}: {reason}")


class PlanError(LLMQueueError, ValueError):
    """A batch plan breaks one of the batch constraints (6a)-(6d) or k_max."""


class EngineStalled(LLMQueueError, RuntimeError):
    """The policy returns an empty batch although work is waiting: it will never progress."""


class KVCacheError(LLMQueueError, ValueError):
    """A request that can never run: its whole KV cache is larger than the memory."""


class FastPathUnavailable(LLMQueueError, ValueError):
    """``engine="fast"`` was asked for a policy or batch-time model the fast core does not run."""


class ProfileError(LLMQueueError, ValueError):
    """A batch-time profile is missing or malformed."""


class ReportError(LLMQueueError, ValueError):
    """A folder cannot be reported on."""


class SweepMismatch(LLMQueueError, ValueError):
    """An existing sweep folder belongs to a different sweep (resume refused)."""


class BackendError(LLMQueueError, RuntimeError):
    """A sweep back end (local processes, Ray) failed."""


class KVCacheFull(LLMQueueError, RuntimeError):
    """The real engine's paged KV cache has no free block left."""


class SolverError(LLMQueueError, RuntimeError):
    """A numerical solver (the network's load-scaling LP) did not find a solution."""
class PolicyError(LLMQueueError, ValueError):
    """An unknown policy name, or a policy whose optional dependency is not installed."""


class ExperimentError(LLMQueueError, ValueError):
    """An unknown ``reproduce`` experiment name."""


class OutputError(LLMQueueError, OSError):
    """An output folder that cannot be written, or holds an earlier run (and no ``--force``)."""


class RunFolderError(LLMQueueError, ValueError):
    """A run folder without a manifest (unfinished), or whose files do not match it."""
