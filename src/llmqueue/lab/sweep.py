"""Run a sweep: grid points and bisections on a backend, journaled, then written as tables.

Points already in the folder's journal are never run again, so a sweep that was interrupted
(Ctrl-C, a kill, a lost node) resumes where it stopped when the same command is run again. The
tables are always built from the journal in the spec's point order, so a resumed sweep, an
uninterrupted one, and the same sweep on another backend or another number of workers write
identical tables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import OutputError, SweepMismatch
from ..sim.manifest import MANIFEST, is_temporary, prepare_out, seal, verify, write_text
from .bisect import BisectResult, search
from .journal import Journal
from .point import point_id
from .progress import SweepProgress
from .spec import SweepSpec, save_spec, saved_spec
from .tables import points_frame, summary_frame, write_table

JOURNAL = "points.jsonl"


@dataclass
class SweepOutcome:
    points: pd.DataFrame
    summary: pd.DataFrame
    bisections: pd.DataFrame | None
    probes: pd.DataFrame | None
    results: dict = field(default_factory=dict)   # (policy, budget, kmax) -> BisectResult
    computed: int = 0
    resumed: int = 0
    files: list[Path] = field(default_factory=list)


def prepare(spec: SweepSpec, out: Path, fresh: bool = False) -> None:
    """Make ``out`` ready: with ``fresh``, clear it; else resume the same sweep (its saved spec
    must be this one, and a finished sweep's manifest must match its files) or start in an empty
    folder. The manifest is removed until the sweep is sealed again."""
    out = Path(out)
    if fresh:
        prepare_out(out, force=True)
    elif out.is_dir() and any(not is_temporary(p) for p in out.iterdir()):
        old = saved_spec(out)
        if old is None:
            raise OutputError(f"the output folder {out} is not empty and holds no sweep (no sweep.json); "
                              f"use --fresh to replace its contents, or choose another --out")
        if old.fingerprint() != spec.fingerprint():
            raise SweepMismatch(f"{out} holds a different sweep (its sweep.json differs); use another --out, "
                                f"or --fresh to discard it")
        if (out / MANIFEST).exists():
            verify(out)            # a finished sweep must be intact before it is extended
        (out / "report.html").unlink(missing_ok=True)   # it would describe the sweep before this run
    prepare_out(out, resume=True)
    save_spec(spec, out)


def run_sweep(spec: SweepSpec, out: Path, backend, progress: SweepProgress | None = None,
              fresh: bool = False) -> SweepOutcome:
    """Run every point that the journal does not hold yet, then write the tables."""
    out = Path(out)
    prepare(spec, out, fresh)
    progress = progress or SweepProgress(enabled=False)
    refs = {bk: spec.reference_for(*bk) for bk in spec.engine_configs()}
    journal = Journal(out / JOURNAL)
    args_of = lambda params: (spec.payload, spec.base, params)  # noqa: E731
    submitted: set[str] = set()
    counts = {"computed": 0, "resumed": 0}

    def need(points: list[dict]) -> list[str]:
        ids = [point_id(p) for p in points]
        fresh_ids = 0
        for pid, p in zip(ids, points):
            if pid in journal or pid in submitted:
                continue
            backend.submit(pid, args_of(p))
            submitted.add(pid)
            fresh_ids += 1
        resumed = sum(pid in journal for pid in dict.fromkeys(ids))
        counts["resumed"] += resumed
        progress.add(fresh_ids + resumed, resumed)
        return ids

    # bisections: generators waiting for lists of point ids
    searches: dict[tuple, dict] = {}
    results: dict[tuple, BisectResult] = {}
    probe_rows: dict[tuple, list[dict]] = {}

    def advance(key: tuple, rows: list[dict] | None) -> None:
        st = searches[key]
        while True:
            try:
                req = st["gen"].send(rows) if rows is not None else next(st["gen"])
            except StopIteration as stop:
                results[key] = stop.value
                del searches[key]
                return
            st["ids"] = need(req)
            probe_rows[key].extend({"search": key, **p} for p in req)
            if all(i in journal for i in st["ids"]):
                rows = [journal.get(i) for i in st["ids"]]
                continue
            return

    with progress:
        try:
            if spec.bisect is not None:
                seeds = spec.bisect_seeds()
                h = spec.bisect.horizon_s or spec.horizon_s
                for (b, k), ref in refs.items():
                    for pol in spec.policies:
                        key = (pol, b, k)
                        mk = (lambda pol_, b_, k_, lam: lambda f, s, hz: spec.params(
                            "bisect", pol_, b_, k_, f * lam, f, s, hz, hz))(pol, b, k, ref.lambda_star)
                        searches[key] = {"gen": search(spec.bisect, ref.lambda_star, h, mk, seeds), "ids": []}
                        probe_rows[key] = []
                        advance(key, None)
            grid = spec.grid_points(refs)
            grid_ids = need(grid)
            while backend.pending:
                pid, row = backend.next_done()
                journal.record(pid, row)
                counts["computed"] += 1
                progress.advance()
                for key in [k for k, st in searches.items() if pid in st["ids"]]:
                    st = searches[key]
                    if all(i in journal for i in st["ids"]):
                        advance(key, [journal.get(i) for i in st["ids"]])
        finally:
            backend.close()
            journal.close()
    results = {k: results[k] for k in probe_rows}   # the spec's order, not the order they finished in
    outcome = SweepOutcome(points=points_frame([journal.get(i) for i in grid_ids]),
                           summary=summary_frame([journal.get(i) for i in grid_ids]),
                           bisections=None, probes=None, results=results,
                           computed=counts["computed"], resumed=counts["resumed"])
    outcome.files += write_table(outcome.points, out, "points")
    outcome.files += write_table(outcome.summary, out, "summary")
    if results:
        order = [k for k in probe_rows]   # insertion order = spec order
        brows = []
        for key in order:
            pol, b, k = key
            d = results[key].to_dict()
            probes = d.pop("probes")
            brows.append({"policy": pol, "token_budget": b, "max_batch_size": k, **d,
                          "max_stable_rate": None if d["stable_rel"] is None else d["stable_rel"] * d["lambda_star"],
                          "probes": len(probes)})
        outcome.bisections = points_frame(brows)
        prow = []
        for key in order:
            for p in probe_rows[key]:
                r = journal.get(point_id({k: v for k, v in p.items() if k != "search"}))
                prow.append(r)
        outcome.probes = points_frame(prow)
        outcome.files += write_table(outcome.bisections, out, "max_stable")
        outcome.files += write_table(outcome.probes, out, "bisect_points")
        write_text(out / "max_stable.json", json.dumps(
            [{"policy": k[0], "token_budget": k[1], "max_batch_size": k[2], **results[k].to_dict()} for k in order],
            indent=2, default=str) + "\n")
    seal(out, "sweep", scenario=spec.payload, seed=None, sweep_fingerprint=spec.fingerprint())
    return outcome
