"""The paper's experiments, one function each: ``run(out, fast=False) -> result dict``.

:data:`EXPERIMENTS` maps the command-line names to their modules; :func:`external_experiments`
adds the experiments of other packages (:mod:`llmqueue.network.reproduce`,
:mod:`llmqueue.memory.reproduce`) when they are present.
"""

from __future__ import annotations

import importlib
from pathlib import Path

EXPERIMENTS = {
    "fig8": ("fig8", "the batch sequences of the four policies on the paper's Fig. 8 example"),
    "stability-contrast": ("contrast",
                           "number in system of the four policies, Fig. 1 workload, 14 req/s and 0.85 lambda*"),
    "theorem2": ("theorem2", "backlog at 0.9 / 1.1 lambda* and the growth rate against the fluid line"),
    "vertex-c": ("vertex_c", "the five configurations at vertex C and the k_max stability region"),
    "token-budget": ("token_budget", "throughput and TTFT/TBT percentiles against the token budget"),
}


#: Other packages' experiments: (module, tuple of names in it, function(name, out) -> dict).
_EXTERNAL = (("llmqueue.network.reproduce", "NETWORK_EXPERIMENTS", "reproduce_network"),
             ("llmqueue.memory.reproduce", "MEMORY_EXPERIMENTS", "reproduce_memory"))


def external_experiments() -> dict:
    """Experiment name -> runner function of the packages in :data:`_EXTERNAL` that are present."""
    found = {}
    for module, names_attr, func in _EXTERNAL:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name is not None and module.startswith(e.name):
                continue
            raise
        found.update({name: getattr(mod, func) for name in getattr(mod, names_attr, ())})
    return found


def names() -> list[str]:
    return list(EXPERIMENTS) + [n for n in external_experiments() if n not in EXPERIMENTS]


def run_experiment(name: str, out: Path, fast: bool = False) -> dict:
    """Run one experiment into ``out``; an unknown name lists the known ones."""
    if name in EXPERIMENTS:
        mod = importlib.import_module(f".{EXPERIMENTS[name][0]}", __name__)
        return mod.run(Path(out), fast=fast)
    net = external_experiments()
    if name in net:
        return net[name](name, Path(out))
    raise ValueError(f"unknown experiment {name!r}; choose one of {', '.join(names())}")
