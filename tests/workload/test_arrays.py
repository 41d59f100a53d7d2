"""The vectorised workload (numpy blocks) is the per-request stream, field by field.

The reference below is the per-request generator the project used before the workload became
columns: one value at a time from each child stream (zip + islice), one Request per request. The
arrays (``Workload.arrays``), the blocks the fast core reads (``RequestStream.array_batches``) and
the Request objects (iterating ``Workload.requests``) must all equal it exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count, islice

import numpy as np
import pytest

from llmqueue.engine.request import Request
from llmqueue.workload import (
    DeterministicArrivals,
    Empirical,
    Fixed,
    GammaArrivals,
    Geometric,
    LogNormal,
    PoissonArrivals,
    RequestArrays,
    SharedPrefix,
    Uniform,
    Workload,
    child_generators,
    read_trace,
    read_trace_arrays,
    write_trace,
)
from llmqueue.workload.arrivals import CHUNK, ArrivalProcess


def _values(draw) -> Iterator:
    while True:
        yield from draw().tolist()


def reference(wl: Workload, seed) -> list[Request]:
    """The per-request stream, written independently of the vectorised code."""
    out = [Request(i, 0.0, r[0], r[1], wl.job_class, r[2]) for i, r in enumerate(wl.initial)]
    rid = len(out)
    if wl.trace is not None:
        trace = list(wl.trace)
        if wl.num_requests is not None:
            trace = trace[: wl.num_requests]
        if wl.duration_s is not None:
            trace = [r for r in trace if r.arrival_time <= wl.duration_s]
        return out + [Request(rid + k, r.arrival_time, r.prompt_tokens, r.decode_tokens, r.job_class,
                              r.label, r.prefix_id, r.prefix_tokens) for k, r in enumerate(trace)]
    if wl.arrival is None:
        return out
    rt, rp, rd, rg = child_generators(seed, 4)
    lengths = zip(wl.arrival.times(rt), _values(lambda: wl.prompt_tokens.sample(rp, CHUNK)),
                  _values(lambda: wl.decode_tokens.sample(rd, CHUNK)))
    groups = _values(lambda: rg.integers(0, wl.prefix.groups, size=CHUNK)) if wl.prefix else None
    for t, p, d in islice(lengths, wl.num_requests):
        if wl.duration_s is not None and t > wl.duration_s:
            break
        if groups is None:
            out.append(Request(rid, t, p, d, wl.job_class))
        else:
            out.append(Request(rid, t, p, d, wl.job_class, None, f"p{next(groups)}",
                               min(wl.prefix.tokens, p)))
        rid += 1
    return out


@dataclass(frozen=True)
class Steps(ArrivalProcess):
    """A process that only defines ``times`` (the base class's chunking is used)."""

    gap: float

    mean_rate = property(lambda self: 1 / self.gap)
    cv2 = property(lambda self: 0.0)

    def times(self, rng):
        return (k * self.gap + rng.random() * 1e-3 for k in count(1))


ARRIVALS = [PoissonArrivals(5.0), GammaArrivals(5.0, 0.3), DeterministicArrivals(7.0), Steps(0.2)]
LENGTHS = [Fixed(129), Uniform(0, 50), Geometric(20.0), LogNormal(100.0, 1.0, 1, 400),
           Empirical((3, 9, 27)), Empirical((1, 2, 500), (0.5, 0.3, 0.2))]
INITIAL = [(), ((5, 0), (0, 3, "A"), (7, 2))]


def _check(wl: Workload, seed) -> None:
    want = reference(wl, seed)
    got = list(wl.requests(seed))
    assert got == want
    arr = wl.arrays(seed)
    assert arr.request_id.tolist() == [r.request_id for r in want]
    assert arr.arrival_time.dtype == np.float64
    assert arr.arrival_time.tolist() == [r.arrival_time for r in want]
    assert arr.prompt_tokens.tolist() == [r.prompt_tokens for r in want]
    assert arr.decode_tokens.tolist() == [r.decode_tokens for r in want]
    jc = [arr.job_class] * len(arr) if isinstance(arr.job_class, str) else arr.job_class.tolist()
    assert jc == [r.job_class for r in want]
    for name, empty in (("label", None), ("prefix_id", None), ("prefix_tokens", 0)):
        col = getattr(arr, name)
        values = [empty] * len(arr) if col is None else col.tolist()
        assert values == [getattr(r, name) for r in want], name
    # the feed's view: blocks of any size, concatenated, are the same columns
    blocks = list(wl.requests(seed).array_batches(1000))
    assert all(len(b) == 1000 for b in blocks[:-1])
    joined = RequestArrays.concat(blocks) if blocks else None
    if joined is not None:
        assert joined.arrival_time.tolist() == arr.arrival_time.tolist()
        assert [r for b in blocks for r in b.to_requests()] == want


@pytest.mark.parametrize("arrival", ARRIVALS, ids=lambda a: type(a).__name__)
@pytest.mark.parametrize("initial", INITIAL, ids=["no-initial", "initial"])
def test_generated_arrays_are_the_per_request_stream(arrival, initial):
    for k, prompt in enumerate(LENGTHS):
        decode = LENGTHS[(k + 2) % len(LENGTHS)]
        # 2.5 chunks by count; a duration that stops mid-chunk; both limits together
        _check(Workload(arrival, prompt, decode, initial=initial, num_requests=2 * CHUNK + 1234), seed=k)
        _check(Workload(arrival, prompt, decode, initial=initial, duration_s=700.0), seed=np.random.SeedSequence(k))
        _check(Workload(arrival, prompt, decode, initial=initial, num_requests=900, duration_s=50.0), seed=3)


def test_prefix_classes_and_edge_counts():
    wl = Workload(PoissonArrivals(3.0), LogNormal(50.0, 1.0, 1, 300), Geometric(10.0),
                  initial=((4, 4, "x"),), num_requests=CHUNK + 17, job_class="chat",
                  prefix=SharedPrefix(5, 32))
    _check(wl, 11)
    _check(Workload(PoissonArrivals(3.0), Fixed(1), Fixed(1), num_requests=0), 1)
    _check(Workload(PoissonArrivals(3.0), Fixed(1), Fixed(1), num_requests=CHUNK), 1)
    _check(Workload(PoissonArrivals(3.0), Fixed(1), Fixed(1), duration_s=0.0), 1)
    _check(Workload(initial=((3, 3), (1, 0, "L"))), 1)


def test_trace_arrays_are_the_replayed_requests(tmp_path):
    reqs = [Request(i, 0.5 * i + (0.1 if i % 3 else 0.0), 10 + i, i % 4, "c" if i % 2 else "default",
                    "lab" if i % 5 == 0 else None, "p1" if i % 7 == 0 else None, 3 if i % 7 == 0 else 0)
            for i in range(200)]
    path = tmp_path / "t.csv"
    write_trace(path, reqs)
    loaded = read_trace(path)
    for trace in (tuple(reqs), tuple(loaded), RequestArrays.from_requests(loaded), read_trace_arrays(path)):
        for initial in INITIAL:
            for n, dur in ((None, None), (50, None), (None, 30.0), (120, 40.0)):
                wl = Workload(trace=trace, initial=initial, num_requests=n, duration_s=dur)
                ref = Workload(trace=tuple(loaded) if isinstance(trace, RequestArrays) else trace,
                               initial=initial, num_requests=n, duration_s=dur)
                want = reference(ref, 0)
                assert list(wl.requests(0)) == want
                arr = wl.arrays(0)
                assert arr.arrival_time.tolist() == [r.arrival_time for r in want]
                assert arr.to_requests() == want
                assert wl.arrival_rate == ref.arrival_rate
                assert wl.mean_prompt_tokens == ref.mean_prompt_tokens
                assert wl.max_prompt_tokens == ref.max_prompt_tokens


def test_unsorted_trace_arrays_are_refused():
    arr = RequestArrays(np.arange(3), np.array([0.0, 2.0, 1.0]), np.ones(3, dtype=np.int64),
                        np.ones(3, dtype=np.int64))
    with pytest.raises(ValueError, match="not sorted by arrival time: request 2"):
        Workload(trace=arr)


def test_object_view_after_array_view_is_refused_and_vice_versa():
    wl = Workload(PoissonArrivals(3.0), Fixed(1), Fixed(1), num_requests=10)
    s = wl.requests(0)
    next(s)
    assert s.array_batches(4) is None          # objects were read: the feed falls back to them
    assert len(list(s)) == 9
