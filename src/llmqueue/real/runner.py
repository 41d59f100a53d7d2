"""Execute one batch plan as ONE forward pass: the real counterpart of a simulated iteration.

:class:`ModelRunner` keeps, per request, the prompt ids, the tokens generated so far and the
request's KV cache; :meth:`ModelRunner.execute` turns a :class:`~llmqueue.engine.BatchPlan`
(prefill chunks and decode tokens of many requests) into a flattened batch, runs the model once,
and samples greedily. Token convention (spec section 7): the forward pass that processes a
prompt's last token yields the first sampled token, which is the input of the request's first
decode step; each decode step processes one token and samples the next. So a request costs
exactly ``prompt_tokens + decode_tokens`` token-passes, as in the batch-time models.

Memory is the engine core's: :meth:`ModelRunner.bind` gives the cache the core's KV manager, and
the driver replays each step's memory events (:meth:`ModelRunner.apply_events`) before it runs
the plan. A request preempted by recomputation loses its cache and re-prefills every token it
had fed (prompt and generated tokens), after which it goes on from the token it had already
sampled, so its greedy output is the one it would have had without preemption; a swapped-out
request's keys and values are copied to host memory and back; a prefix-cache hit starts the
request with the shared blocks another request computed (its prompt's shared prefix has the
same token ids, :func:`~llmqueue.real.tokens.prompt_ids`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..engine.plan import BatchPlan
from ..engine.request import Request
from .batch import build_batch
from .kv_cache import PagedKVCache
from .model import Llama
from .tokens import prompt_ids, start_token


class _Seq:
    """Token state of one request inside the runner."""

    __slots__ = ("prompt", "done", "generated", "next_input", "fed", "host")

    def __init__(self, prompt: list[int], next_input: int | None) -> None:
        self.prompt = prompt
        self.done = 0                 # prompt tokens already in the cache
        self.generated: list[int] = []
        self.next_input = next_input  # input of the next decode step
        self.fed: list[int] = []      # every token given to the model, in order
        self.host: tuple | None = None   # swapped-out keys and values (host memory)


@dataclass
class StepOutput:
    """What one :meth:`ModelRunner.execute` did."""

    tokens: int                 # token load of the batch
    context_tokens: int         # total KV context after the step
    sampled: dict[int, int]     # request id -> greedy token sampled this step


class ModelRunner:
    """A model, its paged KV cache and per-request token state.

    ``record_logits`` keeps, per request, the logits of every token it processed (tests: the
    batch's logits against each request run alone); it makes every row of the batch sampled.
    """

    def __init__(self, model: Llama, *, block_size: int = 16, num_blocks: int = 256,
                 growable: bool = True, token_seed: int = 0, record_logits: bool = False,
                 kv=None) -> None:
        self.model = model
        self.cfg = model.cfg
        self.device, self.dtype = model.device, model.dtype
        self.cache = PagedKVCache(model.cfg, block_size=block_size, num_blocks=num_blocks,
                                  device=self.device, dtype=self.dtype, growable=growable, kv=kv)
        self.token_seed = token_seed
        self.record_logits = record_logits
        self.logits: dict[int, list[torch.Tensor]] = {}
        self.outputs: dict[int, list[int]] = {}     # generated tokens of released requests
        self._seqs: dict[int, _Seq] = {}

    # -- requests -----------------------------------------------------------------------------
    def add(self, request: Request, prompt: list[int] | None = None) -> None:
        """Register a request (its prompt ids drawn from ``token_seed`` unless given)."""
        rid = request.request_id
        if rid in self._seqs:
            raise ValueError(f"request {rid} added to the runner twice")
        if prompt is None:
            prompt = prompt_ids(rid, request.prompt_tokens, self.cfg.vocab_size, self.token_seed,
                                prefix=(request.prefix_id, request.prefix_tokens))
        elif len(prompt) != request.prompt_tokens:
            raise ValueError(f"request {rid}: {len(prompt)} prompt ids for {request.prompt_tokens} prompt tokens")
        first = start_token(rid, self.cfg.vocab_size, self.token_seed) if not prompt else None
        self._seqs[rid] = _Seq(list(prompt), first)

    def prime(self, request: Request, context: int) -> None:
        """Profiling only: a request whose prompt of ``context`` tokens is already cached (as
        zeros; the timing of attention does not depend on the values), ready to decode."""
        self.add(request, prompt=[0] * request.prompt_tokens)
        s = self._seqs[request.request_id]
        self.cache.append(request.request_id, context)
        s.done, s.next_input = len(s.prompt), 0
        s.fed = [0] * context

    def prime_prefill(self, request: Request, done: int) -> None:
        """Profiling only: a request whose first ``done`` prompt tokens are already cached (as
        zeros), so that its next chunk continues a partly prefilled prompt."""
        self.add(request, prompt=[0] * request.prompt_tokens)
        if done:
            if done >= request.prompt_tokens:
                raise ValueError(f"request {request.request_id}: {done} cached tokens leave no prompt to prefill")
            self.cache.append(request.request_id, done)
            s = self._seqs[request.request_id]
            s.done, s.fed = done, [0] * done

    def release(self, rid: int) -> list[int]:
        """Forget a finished request and free its cache; returns (and keeps in ``outputs``) the
        tokens it generated."""
        self.cache.release(rid)
        s = self._seqs.pop(rid, None)
        out = s.generated if s is not None else []
        self.outputs[rid] = out
        return out

    def bind(self, kv) -> None:
        """Use the engine core's KV manager for block ids (before any request is added)."""
        if self._seqs:
            raise ValueError("bind the engine core's KV manager before adding requests")
        self.cache = PagedKVCache(self.cfg, kv=kv, device=self.device, dtype=self.dtype)

    # -- memory events of a step (the engine core's, see EngineCore.schedule) -----------------
    def apply_events(self, events) -> None:
        """Replay a step's memory events: preemptions, swap-ins and prefix-cache hits."""
        for kind, rid, n, table in events:
            if kind == "recompute":
                self.preempt(rid)
            elif kind == "swap_out":
                self.swap_out(rid, table)
            elif kind == "swap_in":
                self.swap_in(rid)
            elif kind == "hit":
                self.hit(rid, n)
            else:
                raise ValueError(f"unknown memory event {kind!r}")

    def preempt(self, rid: int) -> None:
        """Preempted by recomputation: the cache is dropped, and every token fed so far comes
        before the rest of the prompt, to be prefilled again."""
        s = self._seqs[rid]
        s.prompt = s.fed + s.prompt[s.done:]
        s.done, s.fed = 0, []
        self.cache.release(rid)
        if rid in self.logits:
            self.logits[rid] = []

    def swap_out(self, rid: int, table: list[int]) -> None:
        """Copy ``rid``'s keys and values, in the blocks ``table`` it held before the core freed
        them, to host memory."""
        n = self.cache.length(rid)
        idx = torch.from_numpy(self.cache.slots_in(table, n)).to(self.device)
        self._seqs[rid].host = (n, self.cache.k[:, :, idx].to("cpu"), self.cache.v[:, :, idx].to("cpu"))
        self.cache.release(rid)

    def swap_in(self, rid: int) -> None:
        """Write ``rid``'s swapped keys and values into the blocks the core gave it back."""
        s = self._seqs[rid]
        if s.host is None:
            raise ValueError(f"request {rid}: swapped in without having been swapped out")
        n, k, v = s.host
        idx = torch.from_numpy(self.cache.append(rid, n)).to(self.device)
        self.cache.k[:, :, idx] = k.to(self.device)
        self.cache.v[:, :, idx] = v.to(self.device)
        s.host = None

    def hit(self, rid: int, tokens: int) -> None:
        """The first ``tokens`` prompt tokens are in the cached blocks the core put in ``rid``'s
        table: they count as fed."""
        s = self._seqs[rid]
        if s.done or s.fed:
            raise ValueError(f"request {rid}: a prefix-cache hit after it started")
        s.done, s.fed = tokens, s.prompt[:tokens]
        self.cache.cached(rid, tokens)

    def generated(self, rid: int) -> list[int]:
        return self._seqs[rid].generated

    def sequence(self, rid: int) -> list[int]:
        """Every token the request has fed to the model so far, in order."""
        return self._seqs[rid].fed

    # -- one iteration ------------------------------------------------------------------------
    @torch.inference_mode()
    def execute(self, plan: BatchPlan) -> StepOutput:
        """Run the plan's prefill chunks and decode tokens in one forward pass; sample greedily."""
        seqs = self._seqs
        decodes = []
        for rid in plan.decode:
            s = seqs[rid]
            if s.next_input is None:
                raise ValueError(f"request {rid} takes a decode token before its prompt is done")
            decodes.append((rid, s.next_input))
        chunks = []
        for rid, n in plan.prefill:
            s = seqs[rid]
            if s.done + n > len(s.prompt):
                raise ValueError(f"request {rid}: chunk of {n} tokens past the end of its prompt")
            chunks.append((rid, s.prompt[s.done:s.done + n], s.done + n == len(s.prompt)))
        # a chunk that ends a re-prefill (after a preemption) recomputes a token sampled before
        resumed = {rid for rid, _, last in chunks if last and seqs[rid].generated}
        batch = build_batch(self.cache, decodes, chunks, self.cfg.group_size, self.device,
                            sample_all=self.record_logits)
        logits = self.model(batch, self.cache.k, self.cache.v, self.cache.block_size)
        # which request each sampled row belongs to, and whether it yields a new token
        owners: list[tuple[int, bool]] = []
        owners += [(rid, True) for rid in batch.decode_ids]
        if self.record_logits:
            for rid, toks, last in chunks:
                owners += [(rid, False)] * (len(toks) - 1) + [(rid, last)]
        else:
            owners += [(rid, True) for rid, _, last in chunks if last]
        best = logits.argmax(dim=-1).tolist()   # waits for the GPU, so timings include the pass
        sampled: dict[int, int] = {}
        for (rid, takes), tok, row in zip(owners, best, range(len(owners))):
            if self.record_logits:
                self.logits.setdefault(rid, []).append(logits[row].cpu())
            if takes:
                sampled[rid] = tok
        for rid, tok in decodes:
            seqs[rid].fed.append(tok)
        for rid, toks, _ in chunks:
            seqs[rid].fed.extend(toks)
            seqs[rid].done += len(toks)
        for rid, tok in sampled.items():
            s = seqs[rid]
            if rid in resumed:
                continue
            s.generated.append(tok)
            s.next_input = tok
        return StepOutput(tokens=plan.tokens, context_tokens=batch.context_tokens, sampled=sampled)
