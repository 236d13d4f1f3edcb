"""A person named by their UPN (``find_subject``; ``shared.store.subjects`` finds who they are in the store),
what is kept about them (export), and how their mentions are replaced (the ``Scrubber``);
``shared.privacy`` describes the whole."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.errors import SafeLinksError
from shared.escaping import card_text, html_text, plain_line
from shared.store.database import Database, Executor, Row
from shared.store.subjects import Subject, SubjectRows, identify

ERASED_NAME = "Erased user"


class PrivacyError(SafeLinksError):
    """A privacy request that cannot be carried out as asked."""


_UPN = re.compile(r"^[^@\s]+@[^@\s]+$")


def _upn(value: str) -> str:
    upn = value.strip().lower()
    if not _UPN.match(upn):
        raise PrivacyError(f"not a user principal name: {value!r} (expected name@domain)")
    return upn


async def find_subject(db: Executor, upn: str) -> Subject:
    """The identifiers of the person with this UPN, gathered from clicks, messages and user look-ups."""
    return await identify(db, _upn(upn))


def _jsonable(row: Row) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, bytes | bytearray | memoryview):
            value = bytes(value).hex()
        elif isinstance(value, str) and value[:1] in "[{":
            with contextlib.suppress(ValueError):  # text that merely starts like JSON stays text
                value = json.loads(value)
        out[key] = value
    return out


async def export_subject(db: Database, upn: str, *, now: datetime) -> dict[str, Any]:
    """Everything kept about the person, table by table."""
    subject = await find_subject(db, upn)
    mentions = SubjectRows(subject)
    records: dict[str, list[dict[str, Any]]] = {}
    for table in mentions.tables:
        records[table] = [_jsonable(r) for r in await mentions.of(db, table)]
    return {"subject": subject.to_json(), "exportedAt": now.isoformat(),
            "counts": {t: len(rows) for t, rows in records.items()}, "records": records}


def pseudonym(key: bytes, upn: str) -> str:
    digest = hmac.new(key, _upn(upn).encode(), hashlib.sha256).hexdigest()[:16]
    return f"erased-{digest}@erased.invalid"


@dataclass
class Scrubber:
    """Replaces the person's identifiers inside free text and JSON documents."""

    subject: Subject
    alias: str
    alias_id: str
    _pattern: re.Pattern[str] | None = field(init=False)

    def __post_init__(self) -> None:
        s = self.subject
        swaps: dict[str, str] = {s.upn.casefold(): self.alias}
        swaps.update({i.casefold(): self.alias_id for i in s.ids})
        # Names and words also as a card, a mail's text or its HTML showed them.
        for name in s.names:
            swaps.update({form.casefold(): ERASED_NAME for form in _shown_forms(name)})
        for words in s.words:
            swaps.update({form.casefold(): "" for form in _shown_forms(words)})
        swaps.pop("", None)
        self._swaps = swaps
        alternatives = "|".join(re.escape(w) for w in sorted(swaps, key=len, reverse=True))
        # Whole words only: a name is not replaced inside a longer word.
        self._pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE) if swaps else None
        self._names = {n.casefold() for n in s.names}

    def _swap(self, match: re.Match[str]) -> str:
        return self._swaps.get(match.group(0).casefold(), ERASED_NAME)

    def text(self, value: str | None) -> str | None:
        if not value or self._pattern is None:
            return value
        return self._pattern.sub(self._swap, value)

    def node(self, value: Any) -> Any:
        if isinstance(value, str):
            return ERASED_NAME if value.casefold() in self._names else self.text(value)
        if isinstance(value, list):
            return [self.node(v) for v in value]
        if isinstance(value, dict):
            return {k: self.node(v) for k, v in value.items()}
        return value

    def document(self, value: str | None) -> str | None:
        if not value:
            return value
        try:
            parsed = json.loads(value)
        except ValueError:
            return self.text(value)
        return json.dumps(self.node(parsed), separators=(",", ":"))


def _shown_forms(text: str) -> set[str]:
    return {text, card_text(text), plain_line(text), html_text(text)}
