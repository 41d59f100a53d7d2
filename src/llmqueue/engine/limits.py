"""Upper bounds on every size a scenario or trace can give, checked when it is read.

Token counts are summed over requests and iterations in int64 arithmetic (numpy columns, the
cores' counters). With at most :data:`MAX_REQUEST_TOKENS` tokens per request and at most
:data:`MAX_REQUESTS` requests per run, every sum of tokens is at most 10^18, nine times below
int64's 9.2 x 10^18, so no total can overflow. Budgets and KV capacities may be larger than one
request; the fast core's t(b) table is filled lazily, one entry per load that actually occurs,
so nothing is allocated per budget token up front.

The bounds are far above any real deployment (the longest context windows are about 10^7
tokens); they exist so that a typo (``token_budget: 1000000000000000``) or a corrupt trace
(a cell of 10^20) is one clear line, not an OverflowError or a machine out of memory.
"""

from __future__ import annotations

#: Most prompt (or decode) tokens one request may have, and most tokens in a shared prefix.
MAX_REQUEST_TOKENS = 10**9
#: Most requests one run may have (generated, initial, or rows of a trace).
MAX_REQUESTS = 10**9
#: Most tokens of a token budget per iteration (b_max) and of a batch-size limit. The capacity
#: theory scans every load 1..b_max, so this bounds its time and memory too.
MAX_BUDGET_TOKENS = 1 << 20
#: Most tokens of a KV-cache capacity, and most KV blocks (capacity / block_size): the KV manager
#: keeps one free-list entry per block (about 40 bytes), so 2^22 blocks cost about 170 MB.
MAX_KV_TOKENS = 10**12
MAX_KV_BLOCKS = 1 << 22
#: Most replicas of an engine, and most GPUs serving one model.
MAX_REPLICAS = 10**4
#: Most digits a count may be written with before it is even converted (Python refuses
#: int() of more than 4300 digits with a message that names no file, line or column).
MAX_COUNT_DIGITS = 30


def too_large(what: str, value: object, bound: int) -> str:
    """The message for a value above its bound (one line, with the bound and where it comes from)."""
    shown = str(value)
    if len(shown) > 24:
        shown = f"a number of {len(shown)} digits"
    return f"{what} is {shown}, above the limit {bound:,} (llmqueue.engine.limits)"
