"""Wrapped links that were read and whose signature checked out, remembered by their query string.

A link shared in a channel is clicked by many people, and each person often clicks it more than once;
reading its query strictly and checking its MAC again every time is the largest fixed cost of a click.
Only valid links are remembered, so a flood of forged or damaged links cannot fill the memory, and an
entry holds nothing that can change while the process runs: the keys are read at start.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.linkparams import BadLink, parse_link_query
from shared.signing import LinkContext, LinkSigner, LinkStatus
from shared.urls import WebURL

_MESSAGES = {
    LinkStatus.UNKNOWN_KEY: "This link was signed with a key this service no longer has.",
    LinkStatus.MALFORMED: "The link's context could not be read.",
}
_TAMPERED = "This link has been altered since it was made, so it can't be trusted."


@dataclass(frozen=True, slots=True)
class ArrivedLink:
    """A wrapped link as the proxy uses it: the target as the browser reads it, and its signed context.

    ``url`` is the target's serialisation: the Location header, the click record and every lookup use it.
    """

    url: str
    context: LinkContext
    target: WebURL

    @property
    def location(self) -> str:
        return self.target.location

    @property
    def host(self) -> str:
        return self.target.host


class VerifiedLinks:
    """Reads and verifies wrapped links, remembering the valid ones (oldest forgotten first)."""

    def __init__(self, signer: LinkSigner, *, maxsize: int = 8192, max_query: int = 4096) -> None:
        self._signer = signer
        self._maxsize = maxsize
        self._max_query = max_query  # longer links are verified every time rather than pinned in memory
        self._links: dict[str, ArrivedLink] = {}

    def admit(self, raw_query: str) -> ArrivedLink:
        """The link in ``raw_query`` (still percent-encoded); raises BadLink with the page to show."""
        link = self._links.get(raw_query)
        if link is not None:
            return link
        params = parse_link_query(raw_query)
        decoded = self._signer.verify(params.url, params.data, params.sig)
        if decoded.status is not LinkStatus.VALID or decoded.context is None:
            raise BadLink(400, "This link is not valid", _MESSAGES.get(decoded.status, _TAMPERED), params.url)
        link = ArrivedLink(params.target.href, decoded.context, params.target)
        if len(raw_query) <= self._max_query:
            if len(self._links) >= self._maxsize:
                del self._links[next(iter(self._links))]
            self._links[raw_query] = link
        return link

    def __len__(self) -> int:
        return len(self._links)
