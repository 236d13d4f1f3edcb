"""``safelinks wrap`` and ``safelinks decode``."""

from __future__ import annotations

import argparse
import asyncio

from safelinks.cli.context import UsageError, done, settings_from
from safelinks.cli.table import print_json, print_pairs
from shared.clicks import Workload
from shared.services import keys_from
from shared.signing import LinkContext, LinkSigner, LinkStatus
from shared.store import open_database


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("wrap", help="print the wrapped (signed) link for a URL")
    p.add_argument("url")
    p.add_argument("--workload", default="Teams", help="Teams, Email or Office (default Teams)")
    p.add_argument("--recipient", help="UPN of the person the link is made for")
    p.add_argument("--recipient-id", help="their Entra object id")
    p.add_argument("--sender", help="who sent the message holding the link")
    p.add_argument("--tenant", help="tenant id")
    p.add_argument("--conversation", help="Teams conversation (chat or channel) id")
    p.add_argument("--message", help="Teams message id, or the e-mail's network message id")
    p.set_defaults(func=wrap, changes=True)

    d = sub.add_parser("decode", help="show the original URL and context of a wrapped link")
    d.add_argument("link")
    d.add_argument("--json", action="store_true", help="print JSON")
    d.set_defaults(func=decode)


def _signer(args: argparse.Namespace) -> LinkSigner:
    settings = settings_from(args)

    async def load() -> LinkSigner:
        db = await open_database(settings.effective_database_url, synchronous=settings.sqlite_synchronous)
        try:
            return LinkSigner((await keys_from(settings, db)).keyring, settings.public_url)
        finally:
            await db.close()

    return asyncio.run(load())


def wrap(args: argparse.Namespace) -> int:
    from shared.linkparams import BadLink, check_target

    try:
        check_target(args.url)
        workload = Workload.parse(args.workload)
    except BadLink as exc:
        raise UsageError(f"{args.url!r}: {exc.message}") from None
    except ValueError as exc:
        raise UsageError(f"--workload: {exc}") from None
    ctx = LinkContext(workload=workload, tenant=args.tenant, conversation=args.conversation,
                      message=args.message, sender=args.sender, recipient=args.recipient,
                      recipient_id=args.recipient_id)
    link = _signer(args).wrap(args.url, ctx)
    done(args, link, link=link, url=args.url)
    return 0


def decode(args: argparse.Namespace) -> int:
    result = _signer(args).decode(args.link)
    ctx = result.context
    issued = ctx.issued() if ctx is not None else None
    if args.json:
        print_json({
            "status": result.status.value,
            "url": result.url,
            "detail": result.detail,
            "context": None if ctx is None else {
                "workload": ctx.workload.value, "tenant": ctx.tenant, "team": ctx.team,
                "channel": ctx.channel, "conversation": ctx.conversation, "message": ctx.message,
                "sender": ctx.sender, "recipient": ctx.recipient, "recipient_id": ctx.recipient_id,
                "issued_at": issued.isoformat() if issued else None, "key_id": ctx.key_id,
            },
        })
    else:
        pairs: list[tuple[str, object]] = [("signature", result.status.value), ("url", result.url)]
        if result.detail:
            pairs.append(("detail", result.detail))
        if ctx is not None:
            pairs += [("workload", ctx.workload.value), ("tenant", ctx.tenant), ("team", ctx.team),
                      ("channel", ctx.channel), ("conversation", ctx.conversation), ("message", ctx.message),
                      ("sender", ctx.sender), ("recipient", ctx.recipient), ("recipient id", ctx.recipient_id),
                      ("issued", issued.isoformat() if issued else None), ("key id", ctx.key_id)]
        print_pairs(pairs)
    return 0 if result.status is LinkStatus.VALID else 1
