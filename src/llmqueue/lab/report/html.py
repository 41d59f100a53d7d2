"""Building blocks of a self-contained HTML page: no script, no external file, figures inline.

Everything a reader needs is in the one file (PNG figures as data URIs, inline CSS), so it can
be mailed or archived and opens the same anywhere.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import pandas as pd

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1180px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: .85em; margin: .6em 0; }
th, td { border: 1px solid #ccc; padding: .25em .5em; text-align: right; }
th { background: #f0f0f0; }
td.text, th.text { text-align: left; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: .85em; color: #555; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; font-size: .85em; }
.verdict-stable { color: #1a7f37; font-weight: bold; }
.verdict-unstable { color: #c62828; font-weight: bold; }
.verdict-inconclusive { color: #9a6700; font-weight: bold; }
.answer { background: #eef6ee; border-left: 4px solid #2ca02c; padding: .6em 1em; }
.note { font-size: .9em; color: #555; }
.scroll { overflow-x: auto; }
"""


def esc(x) -> str:
    return html.escape(str(x))


def page(title: str, body: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{esc(title)}</h1>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure_file(path: Path, caption: str = "") -> str:
    return figure_bytes(Path(path).read_bytes(), caption or Path(path).name)


def figure_bytes(data: bytes, caption: str) -> str:
    return (f"<figure><img src=\"{png_uri(data)}\" alt=\"{esc(caption)}\">"
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def figure_mpl(fig, caption: str) -> str:
    """Embed a matplotlib figure without writing a file."""
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return figure_bytes(buf.getvalue(), caption)


def verdict_span(v: str) -> str:
    return f"<span class=\"verdict-{esc(v)}\">{esc(v)}</span>"


def fmt(x) -> str:
    if x is None or (isinstance(x, float) and x != x):
        return ""
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def table(df: pd.DataFrame, columns: list[str] | None = None, text_cols: tuple[str, ...] = ()) -> str:
    """A plain HTML table; verdict cells are coloured, text columns left-aligned."""
    cols = [c for c in (columns or list(df.columns)) if c in df.columns]
    head = "".join(f"<th class=\"{'text' if c in text_cols else ''}\">{esc(c)}</th>" for c in cols)
    rows = []
    for rec in df[cols].to_dict("records"):
        cells = []
        for c in cols:
            v = rec[c]
            if v is pd.NA:
                v = None
            content = verdict_span(v) if c == "verdict" and isinstance(v, str) else esc(fmt(v))
            cells.append(f"<td class=\"{'text' if c in text_cols else ''}\">{content}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<div class=\"scroll\"><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
            f"</table></div>")


def details(summary: str, inner: str) -> str:
    return f"<details><summary>{esc(summary)}</summary>{inner}</details>"


def pre(text: str) -> str:
    return f"<pre>{esc(text)}</pre>"
