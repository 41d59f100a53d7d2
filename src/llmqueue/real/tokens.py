"""Token ids for requests that only say how many tokens they have.

llmqueue's requests carry token counts, not text. The real engine needs ids, so each request's
prompt is drawn uniformly from the vocabulary with a generator seeded by ``(seed, request_id)``:
the same request gets the same prompt in every run, whatever else is in the batch. A request with
an empty prompt (already decoding, like the paper's Fig. 8 A, B, C) gets one start token, the
input of its first decode step.
"""

from __future__ import annotations

import numpy as np


def prompt_ids(request_id: int, prompt_tokens: int, vocab_size: int, seed: int = 0) -> list[int]:
    """``prompt_tokens`` ids in ``[0, vocab_size)``, a pure function of the arguments."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, request_id])))
    return rng.integers(0, vocab_size, size=max(prompt_tokens, 0)).tolist()


def start_token(request_id: int, vocab_size: int, seed: int = 0) -> int:
    """The first decode input of a request with an empty prompt."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, request_id, 1])))
    return int(rng.integers(0, vocab_size))
