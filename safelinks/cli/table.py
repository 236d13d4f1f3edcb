"""Plain-text tables people can read, and JSON for machines."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from shared.escaping import terminal_line


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, out: TextIO | None = None,
                max_width: int = 60) -> None:
    out = out or sys.stdout
    cells = [[_cell(v, max_width) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, v in enumerate(row):
            widths[i] = max(widths[i], len(v))
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line.rstrip(), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip(), file=out)
    if not cells:
        print("(none)", file=out)


def print_pairs(pairs: Iterable[tuple[str, Any]], *, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    items = [(k, _cell(v, 200)) for k, v in pairs]
    width = max((len(k) for k, _ in items), default=0)
    for k, v in items:
        print(f"{k.ljust(width)}  {v}", file=out)


def print_json(value: Any, *, out: TextIO | None = None) -> None:
    json.dump(value, out or sys.stdout, indent=2, ensure_ascii=False, default=str)
    print(file=out or sys.stdout)


def _cell(value: Any, max_width: int) -> str:
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, (list, tuple)):
        text = ", ".join(str(v) for v in value)
    else:
        text = str(value)
    text = terminal_line(text)
    return text if len(text) <= max_width else text[: max_width - 1] + "…"
