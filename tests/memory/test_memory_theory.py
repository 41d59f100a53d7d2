"""Memory model arithmetic and the memory-aware capacity."""

from __future__ import annotations

import pytest

from llmqueue.engine import paper_staircase
from llmqueue.memory.hardware import kv_budget
from llmqueue.memory.theory import kv_token_iterations, memory_capacity
from llmqueue.policies.memory_aware import VLLMV1
from llmqueue.workload import Fixed


def test_kv_bytes_and_capacity_arithmetic():
    b = kv_budget("llama-3-8b", "a100-80gb")
    assert b.model.kv_bytes_per_token == 2 * 32 * 8 * 128 * 2 == 131072
    assert b.capacity_tokens % 16 == 0
    assert b.capacity_tokens == int((80 * 0.9 * 2 ** 30 - 8.03e9 * 2) // (131072 * 16)) * 16


def test_model_that_does_not_fit_is_one_clear_error():
    with pytest.raises(ValueError, match="does not fit"):
        kv_budget("llama-2-70b", "a100-80gb")
    assert kv_budget("llama-2-70b", "h100-80gb", num_gpus=2).capacity_tokens > 0


def test_g_counts_block_rounded_token_iterations():
    assert int(kv_token_iterations([3], [2], 1)[0]) == 3 + 4 + 5
    assert int(kv_token_iterations([3], [2], 4)[0]) == 4 + 4 + 8


def test_binding_resource_switches_with_memory():
    small = memory_capacity(VLLMV1(512), paper_staircase(), 4096, 16, Fixed(100), Fixed(100))
    big = memory_capacity(VLLMV1(512), paper_staircase(), 10 ** 7, 16, Fixed(100), Fixed(100))
    assert small.binding == "memory" and small.capacity < big.capacity
    assert big.binding == "compute" and big.capacity == pytest.approx(3.343 / 200 * 1e3, rel=1e-3)


def test_sweep_matches_theory_within_ten_percent():
    from llmqueue.experiments.memory_bound import sweep
    rows = sweep(horizon=30.0, capacities=(8192, 131072))
    for r in rows:
        assert abs(r["threshold_error"]) < 0.10, r
        assert r["binding"] == r["empirical_binding"], r
