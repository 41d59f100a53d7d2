"""A deliberately naive reference simulator of one LLM engine, written from the spec alone.

It imports nothing from ``llmqueue`` (plain Python only), so that a bug in the project cannot
hide in both. It is a time-stepped loop over iteration boundaries, not an event queue, and it
re-scans every request at every boundary: slow, but easy to check line by line against the spec
(paper.md sections 1-3 and 7).

Semantics (spec sections 1 and 3):

* the engine starts idle at time 0; at a boundary ``now`` every request with
  ``arrival_time <= now`` is present (arrivals during an iteration are seen at the next one);
* with no present request holding work, the engine idles to the next arrival time;
* otherwise the policy forms a batch (FCFS = arrival order, ties in input order; k_max counts
  requests in the batch; a loop that meets k_max stops); an empty batch while work exists means
  a whole-prefill policy is frozen: ``RuntimeError("stalled")``;
* the iteration ends at ``now + batch_time(prefill, decode, context)``, where ``context`` sums,
  over the requests in the batch, the tokens in that request's KV cache after the step;
* at the end prefill chunks and decode tokens are applied and prefill-end, first-token and
  completion times stamped with the end time.
"""

from __future__ import annotations

POLICIES = ("fastertransformer", "vllm", "orca", "sarathi")


def _decodes(order, pre_left, dec_left, budget, k_left):
    """One decode token per decode-eligible request, FCFS, while budget and k_max allow."""
    out = []
    for rid in order:
        if budget <= 0 or k_left <= 0:
            break
        if pre_left[rid] == 0 and dec_left[rid] > 0:
            out.append(rid)
            budget -= 1
            k_left -= 1
    return out


def _whole_prefills(order, pre_left, budget, k_left):
    """Whole prefills, FCFS, while each fits whole; stop at the first that does not fit."""
    out = []
    for rid in order:
        if pre_left[rid] == 0:
            continue
        if k_left <= 0 or pre_left[rid] > budget:
            break
        out.append((rid, pre_left[rid]))
        budget -= pre_left[rid]
        k_left -= 1
    return out


def _chunked_prefills(order, pre_left, budget, k_left):
    """Prefill chunks, FCFS, as much as possible from each request before the next."""
    out = []
    for rid in order:
        if budget <= 0 or k_left <= 0:
            break
        if pre_left[rid] == 0:
            continue
        n = min(pre_left[rid], budget)
        out.append((rid, n))
        budget -= n
        k_left -= 1
    return out


def _form_batch(policy, order, pre_left, dec_left, budget, k_max):
    """Return (prefill chunks [(rid, n)], decode rids) for one batch."""
    big = 1 << 60
    k = big if k_max is None else k_max
    if policy == "fastertransformer":
        if any(pre_left[r] == 0 and dec_left[r] > 0 for r in order):
            return [], _decodes(order, pre_left, dec_left, budget, k)
        return _whole_prefills(order, pre_left, budget, k), []
    if policy == "vllm":
        if any(pre_left[r] > 0 for r in order):
            return _whole_prefills(order, pre_left, budget, k), []
        return [], _decodes(order, pre_left, dec_left, budget, k)
    if policy == "orca":
        pre = _chunked_prefills(order, pre_left, budget, k)
        used = sum(n for _, n in pre)
        # pre_left is the state before the step, so a request that got a chunk in this batch is
        # not decode-eligible in it (6a)
        dec = _decodes(order, pre_left, dec_left, budget - used, k - len(pre))
        return pre, dec
    if policy == "sarathi":
        dec = _decodes(order, pre_left, dec_left, budget, k)
        pre = _chunked_prefills(order, pre_left, budget - len(dec), k - len(dec))
        return pre, dec
    raise ValueError(f"unknown policy {policy!r}")


def reference_simulate(policy, token_budget, max_batch_size, batch_time, requests):
    """Simulate ``requests`` [(request_id, arrival_time, prompt_tokens, decode_tokens)], sorted
    by arrival, under ``policy``. Returns (req_rows, iter_rows); see the module docstring."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}")
    arrival = {}
    prompt = {}
    pre_left = {}
    dec_left = {}
    decoded = {}
    prefill_end = {}
    first_token = {}
    completion = {}
    for rid, t, p, d in requests:
        arrival[rid] = t
        prompt[rid] = p
        pre_left[rid] = p
        dec_left[rid] = d
        decoded[rid] = 0
        first_token[rid] = None
        if p == 0:
            prefill_end[rid] = t
            if d == 0:
                completion[rid] = t
    # FCFS order: arrival time, ties in input order (the order requests enter the engine)
    position = {rid: i for i, (rid, _, _, _) in enumerate(requests)}
    fcfs = sorted(arrival, key=lambda r: (arrival[r], position[r]))
    iter_rows = []
    now = 0.0
    nxt = 0  # index in fcfs of the first request not yet seen
    working = []  # present requests with work left, in FCFS order
    while len(completion) < len(arrival):
        while nxt < len(fcfs) and arrival[fcfs[nxt]] <= now:
            r = fcfs[nxt]
            if pre_left[r] > 0 or dec_left[r] > 0:
                working.append(r)
            nxt += 1
        if not working:
            now = arrival[fcfs[nxt]]  # idle until the next arrival
            continue
        pre, dec = _form_batch(policy, working, pre_left, dec_left, token_budget, max_batch_size)
        if not pre and not dec:
            raise RuntimeError("stalled")
        chunk = dict(pre)
        dec_set = set(dec)
        assert not (set(chunk) & dec_set)
        p_tok = sum(chunk.values())
        d_tok = len(dec)
        assert p_tok + d_tok <= token_budget
        if max_batch_size is not None:
            assert len(chunk) + len(dec) <= max_batch_size
        context = 0
        for r in chunk:
            context += (prompt[r] - pre_left[r] + chunk[r]) + decoded[r]
        for r in dec:
            context += prompt[r] + decoded[r] + 1
        duration = batch_time(p_tok, d_tok, context)
        start = now
        now = now + duration
        end = now
        composition = []
        for r in working:  # FCFS order
            if r in chunk:
                composition.append((r, "p", chunk[r]))
            elif r in dec_set:
                composition.append((r, "d", 1))
        iter_rows.append((start, end, p_tok, d_tok, len(composition), tuple(composition)))
        for r, n in chunk.items():
            assert 0 < n <= pre_left[r]
            pre_left[r] -= n
            if pre_left[r] == 0:
                prefill_end[r] = end
        for r in dec:
            assert pre_left[r] == 0 and dec_left[r] > 0
            dec_left[r] -= 1
            decoded[r] += 1
            if decoded[r] == 1:
                first_token[r] = end
        for r in list(chunk) + dec:
            if pre_left[r] == 0 and dec_left[r] == 0:
                completion[r] = end
        working = [r for r in working if r not in completion]
    req_rows = {r: (arrival[r], prefill_end[r], first_token[r], completion[r]) for r in arrival}
    return req_rows, iter_rows
