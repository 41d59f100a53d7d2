"""An append-only record of finished points, so that an interrupted sweep resumes exactly.

Each finished point is one JSON line ``{"id": ..., "row": {...}}``, written and flushed as soon
as the point is done. Reading skips a last line that a kill cut short (and truncates the file
back to the last complete line, so the next append starts clean); a point recorded twice keeps
its first row. Rows go through JSON both when they are recorded and when they are read back, so
a resumed sweep and an uninterrupted one hold bit-identical values.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def normalize(row: dict) -> dict:
    """The row as it reads back from the journal (floats round-trip exactly through repr)."""
    return json.loads(json.dumps(row))


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rows: dict[str, dict] = {}
        if self.path.exists():
            self._load()
        self._fh = open(self.path, "a", encoding="utf-8")

    def _load(self) -> None:
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a line cut short by a kill: drop it
            with open(self.path, "r+b") as fh:
                fh.truncate(end)
            data = data[:end]
        for line in data.decode("utf-8").splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            self.rows.setdefault(rec["id"], rec["row"])

    def __contains__(self, key: str) -> bool:
        return key in self.rows

    def get(self, key: str) -> dict:
        return self.rows[key]

    def record(self, key: str, row: dict) -> dict:
        """Store a finished point; returns the normalised row (the first one if already stored)."""
        if key in self.rows:
            return self.rows[key]
        line = json.dumps({"id": key, "row": row})
        self._fh.write(line + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.rows[key] = json.loads(line)["row"]
        return self.rows[key]

    def close(self) -> None:
        self._fh.close()
