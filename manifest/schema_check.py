"""Checking a manifest against Microsoft's JSON schema, with the same verdicts as Microsoft's tools.

Microsoft validates with ajv in draft-04 mode (`ajv-draft-04` plus `ajv-formats` for uri,
email and regex). ajv-draft-04 also knows `const`, `if`/`then`/`else`, which newer
schemas (v1.30) use and which a plain draft-04 validator would silently ignore. So the
validator here is jsonschema's Draft4Validator extended with those keywords, a `uri`
format check, and a `pattern` keyword that understands the one ECMAScript construct the
schemas use that Python's `re` lacks (`\\p{L}`, any letter).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

from jsonschema import Draft4Validator, FormatChecker, ValidationError, validators
from jsonschema.protocols import Validator

from manifest.problems import ManifestProblem

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$")
# A character class holding \p{L}: `[x\p{L}y]` becomes `(?:[^\W\d_]|[xy])`.
_CLASS_WITH_LETTER = re.compile(r"\[(?!\^)((?:\\.|[^\]\\])*?)\\p\{L\}((?:\\.|[^\]\\])*)\]")
_LETTER = r"[^\W\d_]"


def _json_equal(left: Any, right: Any) -> bool:
    # JSON equality: true is not 1, and containers compare element by element.
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left is right
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(_json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_json_equal, left, right))
    return bool(left == right)


def _const(
    validator: Validator, const: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not _json_equal(instance, const):
        yield ValidationError(f"{const!r} was expected")


def _if(
    validator: Validator, if_schema: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if validator.evolve(schema=if_schema).is_valid(instance):
        if "then" in schema:
            yield from validator.descend(instance, schema["then"], schema_path="then")
    elif "else" in schema:
        yield from validator.descend(instance, schema["else"], schema_path="else")


def python_pattern(pattern: str) -> str:
    """An ECMAScript schema pattern rewritten for Python's `re` (only `\\p{L}` needs it)."""
    if "\\p{L}" not in pattern:
        return pattern

    def replace_class(match: re.Match[str]) -> str:
        rest = match.group(1) + match.group(2)
        rest = rest.replace("\\p{L}", "")
        return f"(?:{_LETTER}|[{rest}])" if rest else _LETTER

    rewritten = _CLASS_WITH_LETTER.sub(replace_class, pattern)
    return rewritten.replace("\\p{L}", _LETTER)


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(python_pattern(pattern))
    except re.error:
        return None


def _pattern(
    validator: Validator, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not isinstance(instance, str):
        return
    compiled = _compiled(pattern)
    if compiled is None:
        yield ValidationError(f"the schema pattern {pattern!r} cannot be evaluated here")
    elif not compiled.search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=("email", "regex"))

    @checker.checks("uri")
    def is_uri(value: object) -> bool:
        return not isinstance(value, str) or bool(_URI.match(value))

    return checker


ManifestValidator = validators.extend(
    Draft4Validator,
    validators={"const": _const, "if": _if, "pattern": _pattern},
)


def _pointer(parts: Iterator[str | int] | list[str | int]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _problems_of(error: ValidationError) -> Iterator[ManifestProblem]:
    """One ValidationError as problems that name the exact field, missing or extra ones included."""
    base = list(error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, Mapping):
        for name in error.validator_value:
            if name not in instance:
                yield ManifestProblem(_pointer([*base, name]), "is required but missing")
        return
    if error.validator == "additionalProperties" and isinstance(instance, Mapping):
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        known = schema.get("properties", {})
        patterns = schema.get("patternProperties", {})
        for name in instance:
            if name in known or any(re.search(p, name) for p in patterns):
                continue
            yield ManifestProblem(_pointer([*base, name]), "is not allowed here")
        return
    yield ManifestProblem(_pointer(base), error.message)


def schema_problems(manifest: Any, schema: dict[str, Any]) -> list[ManifestProblem]:
    """Every way `manifest` breaks `schema`, sorted by field."""
    validator = ManifestValidator(schema, format_checker=_format_checker())
    found = {p for error in validator.iter_errors(manifest) for p in _problems_of(error)}
    return sorted(found, key=lambda p: (p.field, p.message))
