"""Transition re-export: :class:`MemoryView` now lives in :mod:`llmqueue.engine.view`.

Kept only because ``memory/policies.py`` (moving to ``llmqueue.policies``) imports it from here;
import it from :mod:`llmqueue.engine` instead.
"""

from ..engine.view import MemoryView

__all__ = ["MemoryView"]
