"""Token ids for requests that only say how many tokens they have.

llmqueue's requests carry token counts, not text. The real engine needs ids, so each request's
prompt is drawn uniformly from the vocabulary with a generator seeded by ``(seed, request_id)``:
the same request gets the same prompt in every run, whatever else is in the batch. A request with
an empty prompt (already decoding, like the paper's Fig. 8 A, B, C) gets one start token, the
input of its first decode step.
"""

from __future__ import annotations

import hashlib

import numpy as np


def prompt_ids(request_id: int, prompt_tokens: int, vocab_size: int, seed: int = 0,
               prefix: tuple[str | None, int] = (None, 0)) -> list[int]:
    """``prompt_tokens`` ids in ``[0, vocab_size)``, a pure function of the arguments.

    ``prefix`` = (prefix id, tokens): the first ``tokens`` ids are drawn from the prefix id
    instead (a shared system prompt has the same ids in every request that carries it, so a
    prefix-cache hit is exact); without one the ids are those drawn from the request id alone."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, request_id])))
    ids = rng.integers(0, vocab_size, size=max(prompt_tokens, 0)).tolist()
    pid, n = prefix
    if pid is not None and n > 0:
        key = int.from_bytes(hashlib.sha256(pid.encode()).digest()[:8], "little")
        shared = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 2, key])))
        ids[:n] = shared.integers(0, vocab_size, size=min(n, len(ids))).tolist()
    return ids


def start_token(request_id: int, vocab_size: int, seed: int = 0) -> int:
    """The first decode input of a request with an empty prompt."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, request_id, 1])))
    return int(rng.integers(0, vocab_size))
