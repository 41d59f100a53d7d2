"""The report of a ``llmqueue reproduce`` folder: what was found, the figures, the numbers."""

from __future__ import annotations

import json
from pathlib import Path

from . import html as h


def _shorten(x, depth: int = 0):
    """The numbers without the long series (those are in result.json and in the figures)."""
    if isinstance(x, dict):
        return {k: _shorten(v, depth + 1) for k, v in x.items()}
    if isinstance(x, list):
        if len(x) > 12:
            return f"[{len(x)} values]"
        return [_shorten(v, depth + 1) for v in x]
    return x


def build(folder: Path) -> tuple[str, list[str]]:
    res = json.loads((folder / "result.json").read_text())
    body = ["<h2>What was found</h2>",
            "<div class=\"answer\"><ul>" + "".join(f"<li>{h.esc(s)}</li>" for s in res.get("findings", []))
            + "</ul></div>", "<h2>Figures</h2>"]
    for name in res.get("figures", []):
        if (folder / name).exists():
            body.append(h.figure_file(folder / name, name))
    # the lab's experiments keep their numbers under "numbers"; others (the network's) at the top level
    numbers = res.get("numbers", {k: v for k, v in res.items()
                                  if k not in ("experiment", "findings", "figures", "seconds")})
    body.append("<h2>Numbers</h2>")
    body.append(h.details("the numbers plotted (long series abbreviated; all of them are in result.json)",
                          h.pre(json.dumps(_shorten(numbers), indent=2))))
    body.append(f"<p class=\"note\">Run time {res.get('seconds', '?')} s.</p>")
    return f"Reproduction: {res.get('experiment', folder.name)}", body
