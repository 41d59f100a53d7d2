"""The network experiments, for ``llmqueue reproduce`` (the lab's command dispatches here by name).

``reproduce_network(name, out)`` writes PNG figures and ``result.json`` (the plotted numbers)
to ``out`` and returns the result dict, whose ``findings`` are one or two sentences of what was
found and ``figures`` the PNG file names. Also runnable as
``python -m llmqueue.network.reproduce NAME --out DIR``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

NETWORK_EXPERIMENTS = ("rybko-stolyar", "fork-join")


def reproduce_network(name: str, out: Path, fast: bool = False) -> dict:
    """Run experiment ``name`` (one of :data:`NETWORK_EXPERIMENTS`) into the folder ``out``;
    ``fast`` runs a quarter of the horizon (a smoke test, not the result)."""
    out = Path(out)
    if name == "rybko-stolyar":
        from .exp_rybko import HORIZON, run
    elif name == "fork-join":
        from .exp_forkjoin import HORIZON, run
    else:
        raise ValueError(f"unknown network experiment {name!r}; choose one of {', '.join(NETWORK_EXPERIMENTS)}")
    return run(out, horizon=HORIZON / 4 if fast else HORIZON)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m llmqueue.network.reproduce")
    p.add_argument("name", choices=NETWORK_EXPERIMENTS)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--fast", action="store_true", help="a quarter of the horizon (a smoke test)")
    a = p.parse_args(argv)
    out = a.out or Path(f"reproduce-{a.name}")
    t0 = time.monotonic()
    result = reproduce_network(a.name, out, a.fast)
    for line in result["findings"]:
        print(f"- {line}")
    print(f"wrote {', '.join(str(out / f) for f in result['figures'])}, {out / 'result.json'} "
          f"in {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    main()
