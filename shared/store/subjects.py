"""One person's rows across the tables: who they are in the store, and every row that mentions them.

A person (``Subject``) is named by their UPN; the store also knows them by the Entra object ids, Teams
user ids and display names found through their clicks, their messages and the bot's user look-ups.
``SubjectRows`` finds the rows of each table that mention them (an export reads them all); the
statements that erase them are in ``shared.store.erasure``; ``shared.privacy`` describes the whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from shared.store.database import Executor, Row

__all__ = ["AUTHORS", "Authored", "Authorship", "Subject", "SubjectRows", "identify"]

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
        """Their object ids and Teams user ids, sorted."""
        return sorted(self.object_ids | self.user_ids)

    def search_terms(self) -> list[str]:
        """Lower-case texts to find stored JSON that mentions them (LIKE), as written and JSON-escaped."""
        terms = {self.upn, *(i.lower() for i in self.ids)}
        for name in self.names:
            terms |= {name.lower(), json.dumps(name.lower())[1:-1]}
        return sorted(t for t in terms if t)

    def sent(self, conversation_id: Any, message_id: Any) -> bool:
        """Whether they sent this Teams message (a reply in a thread counts under its channel's conversation id)."""
        return (str(conversation_id or "").split(";messageid=", 1)[0], str(message_id or "")) in self.messages

    def to_json(self) -> dict[str, Any]:
        """Their identifiers as an export names them."""
        return {"userPrincipalName": self.upn, "objectIds": sorted(self.object_ids),
                "teamsUserIds": sorted(self.user_ids), "displayNames": sorted(self.names)}


def _in(column: str, values: list[str]) -> tuple[str, list[str]]:
    if not values:
        return "1 = 0", []
    return f"{column} IN ({', '.join('?' for _ in values)})", values


async def identify(ex: Executor, upn: str) -> Subject:
    """The identifiers of the person with this (lower-case) UPN, gathered from clicks, messages, user
    look-ups, and the console's sessions and audit log."""
    object_ids: set[str] = set()
    user_ids: set[str] = set()
    names: set[str] = set()
    for r in await ex.fetchall("SELECT DISTINCT account_object_id FROM clicks WHERE LOWER(account_upn) = ?", (upn,)):
        object_ids.add(r["account_object_id"])
    for r in await ex.fetchall("SELECT DISTINCT sender_aad_object_id, sender_id, sender_name FROM teams_messages "
                               "WHERE LOWER(sender_upn) = ?", (upn,)):
        object_ids.add(r["sender_aad_object_id"])
        user_ids.add(r["sender_id"])
        names.add(r["sender_name"])
    for r in await ex.fetchall("SELECT user_id, aad_object_id, name FROM teams_users WHERE LOWER(upn) = ?", (upn,)):
        user_ids.add(r["user_id"])
        object_ids.add(r["aad_object_id"])
        names.add(r["name"])
    # A console user is known there by the id and name their identity provider gave; their UPN is kept beside.
    for r in await ex.fetchall("SELECT DISTINCT user_id, user_name FROM console_sessions WHERE LOWER(user_upn) = ?",
                               (upn,)):
        object_ids.add(r["user_id"])
        names.add(r["user_name"])
    for r in await ex.fetchall("SELECT DISTINCT actor, actor_name FROM audit_log WHERE LOWER(actor_upn) = ?", (upn,)):
        object_ids.add(r["actor"])
        names.add(r["actor_name"])
    object_ids.discard(None)
    user_ids.discard(None)
    oid, oid_p = _in("sender_aad_object_id", sorted(v for v in object_ids if v))
    uid, uid_p = _in("sender_id", sorted(v for v in user_ids if v))
    messages: set[tuple[str, str]] = set()
    words: set[str] = set()
    for r in await ex.fetchall(f"SELECT conversation_id, message_id, snippet, subject FROM teams_messages "
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


def _queries(s: Subject) -> dict[str, tuple[str, list[Any]]]:
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
    # "Assign to me" in the console assigns an incident to the display name.
    assigned, assigned_p = _in("LOWER(assigned_to)", sorted({n.lower() for n in s.names}))
    return {
        "clicks": (f"SELECT * FROM clicks WHERE LOWER(account_upn) = ? OR LOWER(recipient) = ? OR LOWER(sender) = ? "
                   f"OR {oid} ORDER BY id", [s.upn, s.upn, s.upn, *oid_p]),
        "teams_messages": (f"SELECT * FROM teams_messages WHERE LOWER(sender_upn) = ? OR {msg} OR {tid} "
                           "ORDER BY received_at", [s.upn, *msg_p, *tid_p]),
        "teams_users": (f"SELECT * FROM teams_users WHERE LOWER(upn) = ? OR {usr}", [s.upn, *usr_p]),
        "alerts": (f"SELECT * FROM alerts WHERE LOWER(account_upn) = ? OR LOWER(sender) = ? OR {aoid} "
                   f"OR {sent} OR {in_alert} ORDER BY id",
                   [s.upn, s.upn, *aoid_p, *sent_p, *in_alert_p]),
        "incidents": (f"SELECT * FROM incidents WHERE LOWER(assigned_to) = ? OR {assigned} OR LOWER(comments) LIKE ? "
                      "OR id IN (SELECT incident_id FROM incident_entities WHERE LOWER(value) = ?) ORDER BY id",
                      [s.upn, *assigned_p, like, s.upn]),
        "incident_entities": ("SELECT * FROM incident_entities WHERE LOWER(value) = ?", [s.upn]),
        "alert_actions": (f"SELECT * FROM alert_actions WHERE {actor} OR LOWER(actor) = ? ORDER BY id",
                          [*actor_p, s.upn]),
        "outbox": (f"SELECT * FROM outbox WHERE {in_payload} ORDER BY id", in_payload_p),
        "teams_conversations": (f"SELECT * FROM teams_conversations WHERE {in_reference}", in_reference_p),
        # The console records its user's id as the author (the command line and cards may record a UPN).
        "tabl_entries": (f"SELECT * FROM tabl_entries WHERE LOWER(created_by) = ? OR {_in('created_by', s.ids)[0]}",
                         [s.upn, *s.ids]),
        "verdicts": (f"SELECT * FROM verdicts WHERE LOWER(set_by) = ? OR {_in('set_by', s.ids)[0]}", [s.upn, *s.ids]),
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
        "audit_log": (f"SELECT * FROM audit_log WHERE {actor} OR LOWER(actor) = ? OR LOWER(actor_upn) = ? OR {named} "
                      f"OR {said} ORDER BY id", [*actor_p, s.upn, s.upn, *named_p, *said_p]),
        "console_sessions": (f"SELECT * FROM console_sessions WHERE {user} OR LOWER(user_upn) = ? OR {user_named} "
                             "ORDER BY created_at", [*user_p, s.upn, *user_named_p]),
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


Authored = Literal["tabl_entries", "verdicts", "bot_settings"]
# Each authored table's author column and key column.
AUTHORS: dict[Authored, tuple[str, str]] = {
    "tabl_entries": ("created_by", "id"), "verdicts": ("set_by", "expression"), "bot_settings": ("updated_by", "name")}


class Authorship(NamedTuple):
    """Who made a row (a UPN or an id), and the row's key."""

    author: str | None
    key: Any


class SubjectRows:
    """The rows that mention one person, table by table, read in the caller's transaction or database."""

    def __init__(self, subject: Subject) -> None:
        self.subject = subject
        self._queries = _queries(subject)

    @property
    def tables(self) -> list[str]:
        """Every table that can mention a person, in the order an export lists them."""
        return list(self._queries)

    async def of(self, ex: Executor, table: str) -> list[Row]:
        """The rows of ``table`` that mention the person, as they are now."""
        sql, params = self._queries[table]
        return await ex.fetchall(sql, params)

    async def outbox(self, ex: Executor, *, chats: list[str], payload_like: list[str]) -> list[Row]:
        """Outbox rows that mention the person, the Teams messages to ``chats``, and those whose payload
        matches one of the ``payload_like`` patterns (LIKE)."""
        where, params = _mentions(("payload", "result"), self.subject.search_terms())
        if chats:
            where += f" OR (kind = 'teams' AND key IN ({', '.join('?' for _ in chats)}))"
            params = [*params, *chats]
        if payload_like:
            where += " OR " + " OR ".join("payload LIKE ?" for _ in payload_like)
            params = [*params, *payload_like]
        return await ex.fetchall(f"SELECT * FROM outbox WHERE {where} ORDER BY id", params)

    async def authored(self, ex: Executor, table: Authored) -> list[Authorship]:
        """Who made each row of ``table`` that names the person as its author, and the row's key."""
        author, key = AUTHORS[table]
        return [Authorship(r[author], r[key]) for r in await self.of(ex, table)]
