"""Tables as the command line (and a notebook) prints them: left-aligned, the widest columns wrapped between words
to fit the terminal's width."""

from __future__ import annotations

import textwrap

WIDTH = 120


def print_table(rows: list[dict], columns: list[str], width: int = WIDTH) -> None:
    """Rows as a left-aligned text table no wider than ``width``: the widest columns wrap."""
    cells = [[str(c) for c in columns]] + [["" if r.get(c) is None else str(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(line) for row in cells for line in [row[i]]) for i in range(len(columns))]
    room = width - 2 * (len(columns) - 1)
    while sum(widths) > room:
        widest = max(range(len(widths)), key=lambda i: widths[i])
        if widths[widest] <= 12:
            break
        widths[widest] -= 1
    for row in cells:
        # Words are never cut (a path, an image name or a context's name stays whole): a longer one overflows.
        wrapped = [textwrap.wrap(v, w, break_long_words=False, break_on_hyphens=False) or [""]
                   for v, w in zip(row, widths)]
        for k in range(max(len(x) for x in wrapped)):
            parts = [(x[k] if k < len(x) else "").ljust(w) for x, w in zip(wrapped, widths)]
            print("  ".join(parts).rstrip())


def print_frame(df) -> None:
    print_table(df.to_dict(orient="records"), [str(c) for c in df.columns])
