"""The fast simulation core: the four built-in policies, exactly, without visiting every request
at every iteration. See docs/fast-core.md."""

from .result import StreamedResult
from .run import FastPathUnavailable, run_core, simulate_fast, use_fast_core
from .state import fast_path_reason

__all__ = ["FastPathUnavailable", "StreamedResult", "fast_path_reason", "run_core", "simulate_fast",
           "use_fast_core"]
