"""HTML of the reports: one page with inline styles, tables with every value escaped, no script and no outside URL."""

from __future__ import annotations

import base64
import html
import math
from typing import Any

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; color: #222; }
header { background: #2c3e50; color: white; padding: 12px 24px; }
header h1 { margin: 0; font-size: 20px; }
nav a { color: #dfe6e9; margin-right: 14px; font-size: 13px; }
main { padding: 8px 24px 40px; }
section { margin-top: 24px; }
h2 { border-bottom: 2px solid #2c3e50; padding-bottom: 4px; }
table { border-collapse: collapse; font-size: 12px; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #ecf0f1; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.recommended td { background: #fff7bc; font-weight: bold; }
td.code { font-family: monospace; word-break: break-all; max-width: 900px; }
td:first-child { white-space: nowrap; word-break: normal; }
.scroll { overflow: auto; max-height: 640px; }
.grid { display: flex; flex-wrap: wrap; gap: 8px; }
img { max-width: 100%; height: auto; }
details { margin: 8px 0; }
summary { cursor: pointer; font-weight: bold; }
"""

# Sentences, shown in their own section (the stability section's bootstrap log), not in the metrics table
PROSE = ("n_bootstraps_reason",)

# Order of the metrics table: the contract's scalars that say most first; anything else follows alphabetically.
METRIC_ORDER = (
    "algorithm",
    "level",
    "resolution",
    "n_clusters",
    "size_min",
    "size_median",
    "size_max",
    "n_small_clusters",
    "stability",
    "stability_se",
    "stability_min",
    "stability_min_se",
    "stability_weighted",
    "stability_weighted_se",
    "n_bootstraps",
    "n_stable_clusters",
    "n_unstable_clusters",
    "ari_bootstrap_median",
    "modularity",
    "modularity_at_resolution",
    "silhouette",
    "silhouette_n_cells",
    "ari_previous",
    "nmi_previous",
    "n_parents",
    "n_parents_split",
)


def fmt(value: Any) -> str:
    """A cell's text: integers with separators, other numbers with 3 decimals, the rest as given."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value)


def _kind(value: Any) -> str:
    return "num" if isinstance(value, int | float) and not isinstance(value, bool) else "code"


def table(headers: list[str], rows: list[tuple[Any, ...]], *, header: bool = True, classes: list[str] | None = None) -> str:
    """An HTML table; numbers right-aligned, every value escaped."""
    head = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers) + "</tr>" if header else ""
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        cells = "".join(f'<td class="{_kind(v)}">{html.escape(fmt(v))}</td>' for v in row)
        body.append(f"<tr{cls}>{cells}</tr>")
    return f'<div class="scroll"><table>{head}{"".join(body)}</table></div>'


def metrics_table(metrics: dict[str, dict[str, Any]], highlighted: set[str]) -> str:
    """One row per column, one column per scalar metric (dicts such as cluster sizes are left to the plots)."""
    keys = {k for m in metrics.values() for k, v in m.items() if not isinstance(v, dict | list)} - {"column", *PROSE}
    ordered = [k for k in METRIC_ORDER if k in keys] + sorted(keys - set(METRIC_ORDER))
    rows = [(name, *(m.get(k, "") for k in ordered)) for name, m in metrics.items()]
    classes = ["recommended" if name in highlighted else "" for name in metrics]
    return table(["column", *ordered], rows, classes=classes)


def img(png: bytes, alt: str) -> str:
    """An ``<img>`` whose PNG is inline (a base64 ``data:`` URL)."""
    return f'<img src="data:image/png;base64,{base64.b64encode(png).decode()}" alt="{html.escape(alt)}">'


def page(title: str, sections: list[tuple[str, str, str]]) -> str:
    """The whole document: a header with links to each section (``#id`` anchors only), then the sections."""
    nav = "".join(f'<a href="#{anchor}">{html.escape(name)}</a>' for anchor, name, _ in sections)
    body = "".join(
        f'<section id="{anchor}"><h2>{html.escape(name)}</h2>{content}</section>' for anchor, name, content in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><header><h1>{html.escape(title)}</h1><nav>{nav}</nav></header><main>{body}</main></body></html>\n"
    )
