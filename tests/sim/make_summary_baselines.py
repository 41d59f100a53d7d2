"""The four runs whose summary.json tests/sim/test_summary.py compares byte for byte (the files
in data/ were written by this script on main a541354, before the typed summary)."""

from __future__ import annotations

from pathlib import Path

from llmqueue.engine import paper_staircase
from llmqueue.memory.config import MemoryConfig
from llmqueue.network import JobClass, NetEngine, Network, Step, Workflow, simulate_network
from llmqueue.network.output import write_network_run
from llmqueue.policies import make_policy
from llmqueue.policies.memory_aware import VLLMV1
from llmqueue.sim import simulate
from llmqueue.sim.output import write_run
from llmqueue.sim.stream import run_to_disk, simulate_to_disk
from llmqueue.workload import Geometric, PoissonArrivals, SharedPrefix, Uniform, Workload


def workload(rate=8.0, n=300):
    return Workload(PoissonArrivals(rate), Uniform(20, 200), Geometric(80), num_requests=n)


def write_all(root: Path) -> dict[str, Path]:
    bt = paper_staircase()
    out = {}
    res = simulate(make_policy("sarathi", 512), bt, workload().requests(3), engine="generic")
    write_run(res, root / "plain", extra={"scenario": {"name": "plain"}, "capacity": {"rho": 0.5}}, format="csv")
    out["plain"] = root / "plain" / "summary.json"
    mem = MemoryConfig(3000, prefix_caching=True)
    wl = Workload(PoissonArrivals(6.0), Uniform(200, 600), Geometric(80), num_requests=300,
                  prefix=SharedPrefix(2, 256))
    res = simulate(VLLMV1(512), bt, wl.requests(4), memory=mem)
    write_run(res, root / "memory", format="csv")
    out["memory"] = root / "memory" / "summary.json"
    res = run_to_disk(make_policy("sarathi", 512), bt, workload().requests(5), root / "streamed")
    write_run(res, root / "streamed", extra={"engine": "fast"})
    out["streamed"] = root / "streamed" / "summary.json"
    simulate_to_disk(make_policy("vllm", 512), bt, workload().requests(6), root / "to_disk", fmt="csv")
    out["to_disk"] = root / "to_disk" / "summary.json"
    e = NetEngine("e", make_policy("sarathi", 512), bt)
    f = NetEngine("f", VLLMV1(512), bt, memory=MemoryConfig(4096))
    wf = Workflow.chain(Step("e", Uniform(20, 100), Geometric(40), name="a"),
                        Step("f", Uniform(20, 100), Geometric(40), name="b"))
    net = Network((e, f), (JobClass("C", PoissonArrivals(3.0), wf),))
    nres = simulate_network(net, 2, duration=20.0)
    write_network_run(nres, root / "network", extra={"scenario": {"name": "net"}})
    out["network"] = root / "network" / "summary.json"
    return out


if __name__ == "__main__":
    import shutil
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        for name, p in write_all(Path(d)).items():
            shutil.copy(p, Path(__file__).parent / "data" / f"{name}_summary.json")
