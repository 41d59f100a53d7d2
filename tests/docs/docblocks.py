"""The code blocks of the documentation, as the doc-test harness runs them.

The convention (also in docs/contributing.md):

* ```` ```bash ```` (or ``sh``): every line is a command; the block runs as one bash script with
  ``set -euo pipefail``, from a scratch copy of the repository root (so ``runs/``, ``out/`` and
  ``my.yaml`` land in a temporary folder, and ``../shared/traces`` is the shared trace folder).
* ```` ```console ````: only the lines starting with ``$ `` run (the rest is shown output).
* ```` ```yaml ````: a whole scenario; it is loaded with the scenario loader and simulated
  briefly (``llmqueue simulate FILE --horizon H``).
* ```` ```python ````: runs as a script, from the same scratch folder.
* anything else (``text``, no info string, ``toml``, ...) is not run.
* ``<!-- doctest: skip REASON -->`` on the line before a block (blank lines allowed between)
  skips it, with the reason shown in the test report. Keep these rare.
* ``pip install`` is not run (the tests run in the installed environment): a stand-in ``pip``
  checks that every extra named in ``.[extra,...]`` exists in pyproject.toml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^\s`]*)(.*)$")
SKIP = re.compile(r"^\s*<!--\s*doctest:\s*skip\b\s*(.*?)\s*-->\s*$")
RUN_KINDS = {"bash": "bash", "sh": "bash", "shell": "bash", "console": "console", "yaml": "yaml",
             "yml": "yaml", "python": "python", "py": "python"}


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown file."""

    file: Path
    line: int                 # 1-based line of the opening fence
    kind: str                 # bash | console | yaml | python | the raw info string of other blocks
    text: str
    skip: str | None          # the reason of a ``<!-- doctest: skip ... -->`` marker

    @property
    def id(self) -> str:
        return f"{self.file.name}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.kind in ("bash", "console", "yaml", "python")

    def script(self) -> str:
        """The shell script of a bash or console block."""
        if self.kind == "console":
            lines, cont = [], False
            for line in self.text.splitlines():
                if line.startswith("$ ") or cont:
                    body = line[2:] if line.startswith("$ ") else line
                    lines.append(body)
                    cont = body.rstrip().endswith("\\")
            return "\n".join(lines) + "\n"
        return self.text


def blocks(path: Path) -> list[Block]:
    """Every fenced block of ``path``, in order."""
    out: list[Block] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m.group(1), m.group(2), m.group(3).lower()
        start, body = i, []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1
        skip = None
        j = start - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        if j >= 0 and (s := SKIP.match(lines[j])):
            skip = s.group(1) or "no reason given"
        out.append(Block(path, start + 1, RUN_KINDS.get(info, info or "plain"), "\n".join(body) + "\n", skip))
    return out


def doc_files(repo: Path) -> list[Path]:
    """README.md and every docs/*.md (a new guide is picked up without registering it)."""
    return [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]
