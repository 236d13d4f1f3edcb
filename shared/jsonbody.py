"""JSON from outside (Bot Framework activities, REST API bodies): strict UTF-8 and a bounded depth.

``json.loads`` recurses once per nesting level, so a body of a hundred thousand ``[`` raises
RecursionError (an answer 500, and a deep stack on the event loop). Here the parser's own limit is
caught, and what parses is then walked without recursion and refused past ``MAX_DEPTH`` levels, so
nothing that reads the value later (the SDK's deserializer, ``json.dumps`` into the store) can
recurse deeply either. The same walk refuses strings holding an unpaired UTF-16 surrogate (JSON's
``"\ud800"``): valid JSON, but no UTF-8 encoder (the store's, the logger's) can write it back.
Every refusal is a ``JSONBodyError`` whose message says what is wrong.
"""

from __future__ import annotations

import json
import re
from typing import Any

from shared.errors import SafeLinksError

MAX_DEPTH = 64  # an Adaptive Card nests a few levels per container; Teams' own cards stay far below
_SURROGATE = re.compile("[\ud800-\udfff]")


class JSONBodyError(SafeLinksError, ValueError):
    """The body is not UTF-8, not JSON, or nested deeper than allowed."""


def loads(data: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value in ``data``; raises JSONBodyError."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JSONBodyError(f"the body is not UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise JSONBodyError(f"the JSON is nested deeper than {max_depth} levels") from None
    except ValueError as exc:
        raise JSONBodyError(f"the body is not JSON: {exc}") from None
    problem = _problem(value, max_depth)
    if problem:
        raise JSONBodyError(problem)
    return value


def _problem(value: Any, max_depth: int) -> str | None:
    """What is wrong with a parsed value: too deep, or a string no UTF-8 encoder can write (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return "the JSON holds an unpaired UTF-16 surrogate (such as \\ud800)"
            continue
        if isinstance(item, dict):
            children: Any = [*item.keys(), *item.values()]
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            return f"the JSON is nested deeper than {max_depth} levels"
        stack.extend((child, depth + 1) for child in children)
    return None
