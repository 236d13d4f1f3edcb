"""The durable outbox: delivered once, in order per key, retried until done, surviving restarts."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from shared.outbox import Outbox, PermanentFailure, RetryLater, backoff
from shared.store import open_database
from shared.store.outbox import OutboxItem
from tests.conftest import FakeClock


async def open_db(db_url: str):  # type: ignore[no-untyped-def]
    return await open_database(db_url)


async def test_delivers_and_keeps_the_result(db_url: str) -> None:
    """A due item goes to its kind's handler once and is marked done with the handler's result."""
    db = await open_db(db_url)
    box = Outbox(db)
    seen: list[dict[str, Any]] = []

    async def handler(item: OutboxItem) -> dict[str, Any]:
        seen.append(item.payload)
        return {"activity_id": "a-1"}

    box.register("teams", handler)
    await box.enqueue("teams", {"text": "hi"}, key="conv-1", dedupe_key="card:1")
    assert await box.run_once() == 1
    assert await box.run_once() == 0
    assert seen == [{"text": "hi"}]
    assert await box.result_of("card:1") == {"activity_id": "a-1"}
    await db.close()


async def test_dedupe_key_makes_enqueue_idempotent(db_url: str) -> None:
    """Enqueueing the same dedupe key twice keeps one item."""
    db = await open_db(db_url)
    box = Outbox(db)
    assert await box.enqueue("email", {"n": 1}, dedupe_key="alert:1:email") is not None
    assert await box.enqueue("email", {"n": 2}, dedupe_key="alert:1:email") is None
    assert len(await box.list()) == 1
    await db.close()


async def test_rolled_back_transaction_enqueues_nothing(db_url: str) -> None:
    """An item enqueued inside a transaction that fails is gone with it."""
    db = await open_db(db_url)
    box = Outbox(db)
    try:
        async with db.transaction() as tx:
            await box.enqueue("email", {"n": 1}, tx=tx)
            raise RuntimeError("the alert insert failed")
    except RuntimeError:
        pass
    assert await box.list() == []
    await db.close()


async def test_order_is_kept_per_key_through_retries(db_url: str) -> None:
    """A later item with the same key waits until the earlier one, retried, is delivered."""
    db = await open_db(db_url)
    clock = FakeClock()
    box = Outbox(db, clock=clock)
    order: list[int] = []
    failures = {1: 2}

    async def handler(item: OutboxItem) -> None:
        n = item.payload["n"]
        if failures.get(n):
            failures[n] -= 1
            raise RetryLater("429 Too Many Requests", after=3)
        order.append(n)

    box.register("teams", handler)
    for n in (1, 2, 3):
        await box.enqueue("teams", {"n": n}, key="conv")
    await box.enqueue("teams", {"n": 9}, key="other")
    await box.run_once()
    assert order == [9]
    item = (await box.list("pending"))[0]
    assert item.payload == {"n": 1} and item.last_error == "429 Too Many Requests"
    assert item.next_attempt_at == clock.now.timestamp() + 3  # Retry-After honoured
    assert await box.run_once() == 0  # not due yet, and nothing may overtake it
    for _ in range(2):
        clock.now += timedelta(seconds=3)
        await box.run_once()
    while await box.run_once():
        pass
    assert order == [9, 1, 2, 3]
    await db.close()


async def test_permanent_failure_stops_retrying(db_url: str) -> None:
    """A PermanentFailure marks the item failed and keeps it for inspection."""
    db = await open_db(db_url)
    box = Outbox(db)

    async def handler(item: OutboxItem) -> None:
        raise PermanentFailure("550 mailbox does not exist")

    box.register("email", handler)
    await box.enqueue("email", {})
    await box.run_once()
    [item] = await box.list("failed")
    assert item.last_error == "550 mailbox does not exist" and await box.run_once() == 0
    await db.close()


async def test_unexpected_errors_retry_with_backoff(db_url: str) -> None:
    """Any other exception is retried later, with a growing delay."""
    db = await open_db(db_url)
    clock = FakeClock()
    box = Outbox(db, clock=clock)
    calls = 0

    async def handler(item: OutboxItem) -> None:
        nonlocal calls
        calls += 1
        raise ConnectionResetError("SMTP went away")

    box.register("email", handler)
    await box.enqueue("email", {})
    await box.run_once()
    [item] = await box.list("pending")
    delay = item.next_attempt_at - clock.now.timestamp()
    assert item.attempts == 1 and 0.75 <= delay <= 1.25 and "SMTP went away" in (item.last_error or "")
    assert [round(backoff(a) / 2 ** (a - 1), 1) >= 0.7 for a in (1, 5, 9)] == [True, True, True]
    assert backoff(30) <= 300 * 1.25


async def test_two_workers_never_deliver_one_item_twice(db_url: str) -> None:
    """Claims are leased: two outboxes on one database share the work without overlap."""
    db1, db2 = await open_database(db_url), await open_database(db_url)
    delivered: list[int] = []

    async def handler(item: OutboxItem) -> None:
        await asyncio.sleep(0.001)
        delivered.append(item.payload["n"])

    boxes = [Outbox(db1), Outbox(db2)]
    for box in boxes:
        box.register("webhook", handler)
    for n in range(200):
        await boxes[0].enqueue("webhook", {"n": n})
    for _ in range(20):
        await asyncio.gather(boxes[0].run_once(20), boxes[1].run_once(20))
    assert sorted(delivered) == list(range(200))
    await db1.close()
    await db2.close()


async def test_pending_items_survive_a_restart(db_url: str) -> None:
    """What was enqueued before the process stopped is delivered by the next one."""
    db = await open_db(db_url)
    await Outbox(db).enqueue("email", {"to": "soc@contoso.com"})
    await db.close()
    db = await open_db(db_url)
    box = Outbox(db)
    got: list[dict[str, Any]] = []

    async def handler(item: OutboxItem) -> None:
        got.append(item.payload)

    box.register("email", handler)
    await box.run_once()
    assert got == [{"to": "soc@contoso.com"}]
    await db.close()


async def test_global_rate_limit_spaces_deliveries(db_url: str) -> None:
    """With a global rate of 10/s, 20 deliveries take at least about a second."""
    db = await open_db(db_url)
    box = Outbox(db)

    async def handler(item: OutboxItem) -> None:
        return None

    box.register("teams", handler, global_rate=10)
    for n in range(20):
        await box.enqueue("teams", {"n": n}, key=f"c{n}")
    started = time.monotonic()
    while await box.run_once():
        pass
    assert time.monotonic() - started >= 0.9
    await db.close()


async def test_run_loop_wakes_on_enqueue(db_url: str) -> None:
    """The worker loop delivers an item enqueued while it sleeps, without waiting for a long poll."""
    db = await open_db(db_url)
    box = Outbox(db, poll_interval=30)
    done = asyncio.Event()

    async def handler(item: OutboxItem) -> None:
        done.set()

    box.register("email", handler)
    worker = asyncio.create_task(box.run())
    await asyncio.sleep(0.05)
    await box.enqueue("email", {})
    await asyncio.wait_for(done.wait(), 5)
    worker.cancel()
    await db.close()


async def test_latest_state_replaces_an_item_still_waiting(db_url: str) -> None:
    """With replace_pending an item of the slot still waiting takes the newer payload; once it is out, a new
    item carries the next one (so a burst of card updates is a few deliveries of the latest state)."""
    db = await open_db(db_url)
    box = Outbox(db)
    seen: list[int] = []

    async def handler(item: OutboxItem) -> None:
        seen.append(item.payload["n"])

    box.register("teams", handler)
    for n in range(1, 6):
        await box.enqueue("teams", {"n": n}, key="conv-1", dedupe_key="card:incident:1", replace_pending=True)
    assert await box.run_once() == 1 and seen == [5]
    await box.enqueue("teams", {"n": 6}, key="conv-1", dedupe_key="card:incident:1", replace_pending=True)
    await box.enqueue("teams", {"n": 7}, key="conv-1", dedupe_key="card:incident:1", replace_pending=True)
    assert await box.run_once() == 1 and seen == [5, 7]
    assert len(await box.list()) == 2
    await db.close()


async def test_not_before_holds_an_item_until_then(db_url: str) -> None:
    """An item queued with not_before waits until that time, and holds up no other key."""
    db = await open_db(db_url)
    clock = FakeClock()
    box = Outbox(db, clock=clock)
    seen: list[str] = []

    async def handler(item: OutboxItem) -> None:
        seen.append(item.payload["what"])

    box.register("email", handler)
    await box.enqueue("email", {"what": "summary"}, dedupe_key="summary:1",
                      not_before=clock.now.timestamp() + 600)
    await box.enqueue("email", {"what": "alert"})
    assert await box.run_once() == 1 and seen == ["alert"]
    clock.now += timedelta(seconds=601)
    assert await box.run_once() == 1 and seen == ["alert", "summary"]
    await db.close()
