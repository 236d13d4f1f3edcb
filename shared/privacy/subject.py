"""Who a person is in the store (their UPN, ids, names, messages), what is kept about them (export), and
how their mentions are replaced (the ``Scrubber``); ``shared.privacy`` describes the whole."""

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

ERASED_NAME = "Erased user"


class PrivacyError(SafeLinksError):
    """A privacy request that cannot be carried out as asked."""


_UPN = re.compile(r"^[^@\s]+@[^@\s]+$")
# Message texts shorter than this are not searched for elsewhere ("ok" would match half the store).
_SHORTEST_WORDS = 8


@dataclass(frozen=True)
class Subject:
    """Everything that identifies one person in the store."""

    upn: str
    object_ids: frozenset[str] = frozenset()
    user_ids: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()
    # The Teams messages they sent: (conversation id, message id), and what they wrote in them.
    messages: frozenset[tuple[str, str]] = frozenset()
    words: frozenset[str] = frozenset()

    @property
    def ids(self) -> list[str]:
        return sorted(self.object_ids | self.user_ids)

    def search_terms(self) -> list[str]:
        """Lower-case texts to find stored JSON that mentions them (LIKE), as written and JSON-escaped."""
        terms = {self.upn, *(i.lower() for i in self.ids)}
        for name in self.names:
            terms |= {name.lower(), json.dumps(name.lower())[1:-1]}
        return sorted(t for t in terms if t)

    def sent(self, conversation_id: Any, message_id: Any) -> bool:
        return (str(conversation_id or "").split(";messageid=", 1)[0], str(message_id or "")) in self.messages

    def to_json(self) -> dict[str, Any]:
        return {"userPrincipalName": self.upn, "objectIds": sorted(self.object_ids),
                "teamsUserIds": sorted(self.user_ids), "displayNames": sorted(self.names)}


def _upn(value: str) -> str:
    upn = value.strip().lower()
    if not _UPN.match(upn):
        raise PrivacyError(f"not a user principal name: {value!r} (expected name@domain)")
    return upn


def _in(column: str, values: list[str]) -> tuple[str, list[str]]:
    if not values:
        return "1 = 0", []
    return f"{column} IN ({', '.join('?' for _ in values)})", values


async def find_subject(db: Executor, upn: str) -> Subject:
    """The identifiers of the person with this UPN, gathered from clicks, messages and user look-ups."""
    upn = _upn(upn)
    object_ids: set[str] = set()
    user_ids: set[str] = set()
    names: set[str] = set()
    for r in await db.fetchall("SELECT DISTINCT account_object_id FROM clicks WHERE LOWER(account_upn) = ?", (upn,)):
        object_ids.add(r["account_object_id"])
    for r in await db.fetchall("SELECT DISTINCT sender_aad_object_id, sender_id, sender_name FROM teams_messages "
                               "WHERE LOWER(sender_upn) = ?", (upn,)):
        object_ids.add(r["sender_aad_object_id"])
        user_ids.add(r["sender_id"])
        names.add(r["sender_name"])
    for r in await db.fetchall("SELECT user_id, aad_object_id, name FROM teams_users WHERE LOWER(upn) = ?", (upn,)):
        user_ids.add(r["user_id"])
        object_ids.add(r["aad_object_id"])
        names.add(r["name"])
    object_ids.discard(None)
    user_ids.discard(None)
    oid, oid_p = _in("sender_aad_object_id", sorted(v for v in object_ids if v))
    uid, uid_p = _in("sender_id", sorted(v for v in user_ids if v))
    messages: set[tuple[str, str]] = set()
    words: set[str] = set()
    for r in await db.fetchall(f"SELECT conversation_id, message_id, snippet, subject FROM teams_messages "
                               f"WHERE LOWER(sender_upn) = ? OR {oid} OR {uid}", [upn, *oid_p, *uid_p]):
        messages.add((str(r["conversation_id"]).split(";messageid=", 1)[0], str(r["message_id"])))
        words |= {w for w in (r["snippet"], r["subject"]) if w and len(w) >= _SHORTEST_WORDS}
    return Subject(upn, frozenset(v for v in object_ids if v), frozenset(v for v in user_ids if v),
                   frozenset(v for v in names if v), frozenset(messages), frozenset(words))


def _mentions(columns: tuple[str, ...], terms: list[str]) -> tuple[str, list[str]]:
    """Any of ``columns`` (lower-cased) containing any of ``terms``: a WHERE clause and its parameters."""
    if not terms:
        return "1 = 0", []
    clauses = [f"LOWER({c}) LIKE ?" for c in columns for _ in terms]
    return "(" + " OR ".join(clauses) + ")", [f"%{t}%" for _ in columns for t in terms]


def queries(s: Subject) -> dict[str, tuple[str, list[Any]]]:
    """For each table, the rows that mention the person."""
    oid, oid_p = _in("account_object_id", sorted(s.object_ids))
    msg, msg_p = _in("sender_aad_object_id", sorted(s.object_ids))
    tid, tid_p = _in("sender_id", sorted(s.user_ids))
    usr, usr_p = _in("user_id", s.ids)
    aoid, aoid_p = _in("account_object_id", sorted(s.object_ids))
    actor, actor_p = _in("actor", [*s.ids, s.upn])
    sent, sent_p = _in("message_id", sorted({m for _, m in s.messages}))
    terms = s.search_terms()
    in_alert, in_alert_p = _mentions(("evidence", "details", "comments", "assigned_to"), terms)
    in_payload, in_payload_p = _mentions(("payload", "result"), terms)
    in_reference, in_reference_p = _mentions(("reference",), terms)
    like = f"%{s.upn}%"
    return {
        "clicks": (f"SELECT * FROM clicks WHERE LOWER(account_upn) = ? OR LOWER(recipient) = ? OR LOWER(sender) = ? "
                   f"OR {oid} ORDER BY id", [s.upn, s.upn, s.upn, *oid_p]),
        "teams_messages": (f"SELECT * FROM teams_messages WHERE LOWER(sender_upn) = ? OR {msg} OR {tid} "
                           "ORDER BY received_at", [s.upn, *msg_p, *tid_p]),
        "teams_users": (f"SELECT * FROM teams_users WHERE LOWER(upn) = ? OR {usr}", [s.upn, *usr_p]),
        "alerts": (f"SELECT * FROM alerts WHERE LOWER(account_upn) = ? OR LOWER(sender) = ? OR {aoid} "
                   f"OR {sent} OR {in_alert} ORDER BY id",
                   [s.upn, s.upn, *aoid_p, *sent_p, *in_alert_p]),
        "incidents": ("SELECT * FROM incidents WHERE LOWER(assigned_to) = ? OR LOWER(comments) LIKE ? OR id IN "
                      "(SELECT incident_id FROM incident_entities WHERE LOWER(value) = ?) ORDER BY id",
                      [s.upn, like, s.upn]),
        "incident_entities": ("SELECT * FROM incident_entities WHERE LOWER(value) = ?", [s.upn]),
        "alert_actions": (f"SELECT * FROM alert_actions WHERE {actor} OR LOWER(actor) = ? ORDER BY id",
                          [*actor_p, s.upn]),
        "outbox": (f"SELECT * FROM outbox WHERE {in_payload} ORDER BY id", in_payload_p),
        "teams_conversations": (f"SELECT * FROM teams_conversations WHERE {in_reference}", in_reference_p),
        "tabl_entries": ("SELECT * FROM tabl_entries WHERE LOWER(created_by) = ?", [s.upn]),
        "verdicts": ("SELECT * FROM verdicts WHERE LOWER(set_by) = ?", [s.upn]),
        "bot_settings": (f"SELECT * FROM bot_settings WHERE LOWER(updated_by) = ? OR {_in('updated_by', s.ids)[0]}",
                         [s.upn, *s.ids]),
        **_quarantine_queries(s),
        **_console_queries(s),
        "coverage_targets": (f"SELECT * FROM coverage_targets WHERE kind = 'user' AND (LOWER(name) = ? OR "
                             f"{_in('target_id', sorted(s.object_ids))[0]})", [s.upn, *sorted(s.object_ids)]),
    }


def _console_queries(s: Subject) -> dict[str, tuple[str, list[Any]]]:
    """The console's own records: the changes they made or that name them, and their signed-in sessions."""
    names = sorted({n.lower() for n in s.names} | {s.upn})
    actor, actor_p = _in("actor", [*s.ids, s.upn])
    named, named_p = _in("LOWER(actor_name)", names)
    said, said_p = _mentions(("target", "detail"), s.search_terms())
    user, user_p = _in("user_id", [*s.ids, s.upn])
    user_named, user_named_p = _in("LOWER(user_name)", names)
    return {
        "audit_log": (f"SELECT * FROM audit_log WHERE {actor} OR LOWER(actor) = ? OR {named} OR {said} ORDER BY id",
                      [*actor_p, s.upn, *named_p, *said_p]),
        "console_sessions": (f"SELECT * FROM console_sessions WHERE {user} OR {user_named} ORDER BY created_at",
                             [*user_p, *user_named_p]),
    }


def _quarantine_queries(s: Subject) -> dict[str, tuple[str, list[Any]]]:
    """Quarantined messages they sent or acted on, and the messages they reported."""
    names = sorted(s.names | {s.upn})
    sender, sender_p = _in("sender_aad_object_id", sorted(s.object_ids))
    by, by_p = _in("LOWER(requested_by)", [n.lower() for n in names])
    rel, rel_p = _in("LOWER(released_by)", [n.lower() for n in names])
    reporter, reporter_p = _in("reporter_id", sorted(s.user_ids))
    reporter_oid, reporter_oid_p = _in("reporter_aad_object_id", sorted(s.object_ids))
    return {
        "quarantined_messages": (f"SELECT * FROM quarantined_messages WHERE LOWER(sender) = ? OR {sender} OR {by} "
                                 f"OR {rel} ORDER BY id", [s.upn, *sender_p, *by_p, *rel_p]),
        "message_reports": (f"SELECT * FROM message_reports WHERE {reporter} OR {reporter_oid} ORDER BY id",
                            [*reporter_p, *reporter_oid_p]),
    }


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
    records: dict[str, list[dict[str, Any]]] = {}
    for table, (sql, params) in queries(subject).items():
        records[table] = [_jsonable(r) for r in await db.fetchall(sql, params)]
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
