"""The policy registry: one declaration per policy, from which every list of names derives."""

import subprocess
import sys
from pathlib import Path

import pytest

from llmqueue import ConstantBatchTime
from llmqueue.errors import PolicyError
from llmqueue.policies import ClassPriority, SarathiServe, make_policy, policy_info, policy_infos, policy_names
from llmqueue.policies.registry import PolicyInfo, has_fast_path
from llmqueue.policies.table import policy_blocks, policy_table
from llmqueue.sim.fast import fast_path_reason

ROOT = Path(__file__).resolve().parents[1]


def test_names_and_capabilities():
    assert policy_names() == ["fastertransformer", "vllm", "orca", "sarathi", "vllm-v1", "threshold"]
    assert policy_names(memory_aware=True) == ["vllm-v1", "threshold"]
    assert policy_names(fast_path=True) == ["fastertransformer", "vllm", "orca", "sarathi"]
    for info in policy_infos():
        pol = make_policy(info.name.upper(), 64, 4)
        assert type(pol) is info.cls and pol.name == info.name and pol.max_batch_size == 4
        assert info.work_conserving == pol.work_conserving and info.whole_prefill == pol.whole_prefill
        assert info.mixes_prefill_decode == (not info.whole_prefill)
        assert info.memory_aware == hasattr(pol, "victim_order")
        # the fast core's check asks the registry
        assert (fast_path_reason(pol, ConstantBatchTime(1.0)) is None) == info.fast_path == has_fast_path(pol)


def test_wrappers_and_subclasses_have_no_fast_path():
    class Mine(SarathiServe):
        pass
    assert not has_fast_path(Mine(8)) and not has_fast_path(ClassPriority(8, inner=SarathiServe(8)))


def test_unknown_name_and_missing_dependency():
    with pytest.raises(PolicyError, match="unknown policy 'fifo'; choose one of fastertransformer, .*threshold"):
        make_policy("fifo", 8)
    with pytest.raises(ValueError):           # PolicyError stays a ValueError for old callers
        policy_info("nope")
    info = PolicyInfo("x", SarathiServe, "X", "test", True, requires=("llmqueue_no_such_module",))
    with pytest.raises(PolicyError, match="needs llmqueue_no_such_module"):
        info.build(8)


def test_docs_policy_tables_are_generated_from_the_registry():
    table = policy_table()
    readme = policy_blocks((ROOT / "README.md").read_text())
    assert readme, "README.md has no <!-- policy-table --> block"
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in policy_blocks(path.read_text()):
            assert block == table, (f"{path.name}: policy table out of date; "
                                    "paste llmqueue.policies.table.policy_table()")
    for name in policy_names():
        assert f"| `{name}` (" in table


def test_policies_do_not_import_memory_or_hypothesis():
    code = ("import sys, llmqueue.policies; "
            "print(sorted(m for m in ('llmqueue.memory', 'hypothesis') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
