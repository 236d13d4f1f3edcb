"""A person's data: everything kept about them (export), its erasure (pseudonymisation), and retention.

A person is named by their UPN. The store also knows them by their Entra object id, their Teams user
id and display name (found through their clicks, their messages and the bot's user look-ups);
all of these identify them.

Export returns every row that mentions them, table by table, as JSON-ready dicts.

Erasure keeps the counts and the shape of the security record — every click, alert and incident
stays, incidents keep their alerts and correlations — but the person in them becomes a pseudonym:
``erased-<16 hex>@erased.invalid``, the same for every mention of one person (an HMAC of the UPN
under a key derived from the signing keys, so it cannot be reversed by guessing UPNs, and a later
erasure of the same person finds nothing left). What only describes them goes: the IP address and
user agent of their clicks, the text of the messages they sent, the bot's cache of their profile.

Erasure works on structure, not on whole strings: the alert evidence and click details are walked
field by field (their user account, the message they sent and its text, the address they clicked
from), the notifications that copied an alert (its card, e-mail and webhook body) are rendered
again from the erased alert, and what remains is searched for every form in which the person's
names, ids and words were written (as typed, and as escaped for a card, a mail or HTML). Afterwards
SQLite's write-ahead log is checkpointed and truncated, and ``secure_delete`` (set on every
connection) has zeroed the freed space, so the file keeps no old copy.

Retention (``retention``) deletes what is older than its table's period, on a schedule and on demand.
"""

from shared.privacy.erasure import Erasure, erase_subject
from shared.privacy.retention import RetentionPolicy, purge, retention_job
from shared.privacy.subject import PrivacyError, export_subject, find_subject, pseudonym
from shared.store.subjects import Subject

__all__ = [
    "Erasure",
    "PrivacyError",
    "RetentionPolicy",
    "Subject",
    "erase_subject",
    "export_subject",
    "find_subject",
    "pseudonym",
    "purge",
    "retention_job",
]
