"""The journal: real SQLite files, batching, durability under SIGKILL, dedup, migrations."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tui_trader.domain import Alert, AlertLevel, Fill, Order, OrderStatus, OrderTicket, OrderType, Side
from tui_trader.domain import events as ev
from tui_trader.engine.bus import EventBus
from tui_trader.store import Journal
from tui_trader.store.schema import SCHEMA_VERSION

from .old_journal import shared_ref_events, write_old_journal

T0 = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)


def make_order(ref: str, status: OrderStatus, at: datetime = T0) -> Order:
    ticket = OrderTicket("SPY", Side.BUY, 10, OrderType.LMT, limit_price=500.0, strategy="ema_cross", created_at=at)
    return Order(ref, ticket, OrderStatus.PENDING_APPROVAL, at, at).with_status(status, at, f"to {status}")


def make_fill(exec_id: str, ref: str = "R1", at: datetime = T0) -> Fill:
    return Fill(exec_id, ref, "SPY", Side.BUY, 5, 500.0, at, broker_id=7)


def file_modes(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mode & 0o777 for p in directory.iterdir()}


@pytest.fixture
async def journal(tmp_path: Path):
    j = await Journal.open(tmp_path / "journal.sqlite", flush_interval_ms=5)
    yield j
    await j.close()


async def test_open_when_file_empty_then_migrated_to_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    j = await Journal.open(path)
    await j.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"events", "orders", "order_states", "fills", "operator_actions", "kill_state", "alerts"} <= tables


async def test_open_when_file_new_then_it_and_its_wal_readable_by_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "private.sqlite"
    j = await Journal.open(path)
    j.append(ev.OrderUpdated(T0, make_order("R1", OrderStatus.SENDING)))
    await j.flush()
    modes = file_modes(tmp_path)
    await j.close()
    assert modes["private.sqlite"] == 0o600
    assert modes["private.sqlite-wal"] == 0o600


async def test_open_when_file_exists_then_its_mode_kept(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    j = await Journal.open(path)
    await j.close()
    path.chmod(0o640)
    j = await Journal.open(path)
    await j.close()
    assert file_modes(tmp_path)["shared.sqlite"] == 0o640


async def test_open_when_reopened_then_migrations_not_repeated_and_data_kept(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    j = await Journal.open(path)
    j.append(ev.OrderUpdated(T0, make_order("R1", OrderStatus.SENDING)))
    await j.close()
    j = await Journal.open(path)
    assert [o.order_ref for o in await j.orders()] == ["R1"]
    await j.close()


async def test_fill_when_exec_id_repeated_then_recorded_once(journal: Journal) -> None:
    fill = make_fill("E1")
    for _ in range(3):
        journal.append(ev.OrderFilled(T0, fill))
    journal.append(ev.CommissionReported(T0, "E1", 1.25, realized_pnl=0.0))
    await journal.flush()
    fills = await journal.fills()
    assert [(f.exec_id, f.quantity, f.commission) for f in fills] == [("E1", 5.0, 1.25)]
    assert await journal.known_exec_ids() == {"E1"}
    assert await journal.count("events") == 4


async def test_order_when_status_changes_then_table_holds_latest_and_history(journal: Journal) -> None:
    for i, status in enumerate([OrderStatus.SENDING, OrderStatus.SUBMITTED, OrderStatus.FILLED]):
        journal.append(ev.OrderUpdated(T0 + timedelta(seconds=i), make_order("R1", status)))
    journal.append(ev.OrderUpdated(T0, make_order("R2", OrderStatus.SUBMITTED)))
    await journal.flush()
    assert (await journal.order("R1")).status is OrderStatus.FILLED  # type: ignore[union-attr]
    assert [o.order_ref for o in await journal.open_orders()] == ["R2"]
    assert await journal.count("order_states") == 4
    assert [e.kind for e in await journal.events(order_ref="R1")] == ["OrderUpdated"] * 3


async def test_finished_orders_then_the_newest_ended_since_the_bound_oldest_first_open_ones_left_out(
        journal: Journal) -> None:
    # Arrange: in New York, one ended the evening before (02:30 UTC on the 5th: the 4th), three on the 5th, one open.
    ny = ZoneInfo("America/New_York")
    evening = datetime(2026, 3, 5, 2, 30, tzinfo=UTC)
    ended = {"eve": evening, "a": evening + timedelta(hours=12), "b": evening + timedelta(hours=13),
             "c": evening + timedelta(hours=14)}
    for ref, at in ended.items():
        journal.append(ev.OrderUpdated(at, make_order(ref, OrderStatus.CANCELLED, at)))
    journal.append(ev.OrderUpdated(evening, make_order("open", OrderStatus.SUBMITTED, evening + timedelta(hours=15))))
    await journal.flush()
    fifth = datetime(2026, 3, 5, tzinfo=ny)
    # Act / Assert: the bound compared as an instant, the newest kept under the limit, oldest first.
    assert [o.order_ref for o in await journal.finished_orders(fifth, 10)] == ["a", "b", "c"]
    assert [o.order_ref for o in await journal.finished_orders(fifth, 2)] == ["b", "c"]


async def test_kill_state_when_engaged_then_latched_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    j = await Journal.open(path)
    j.append(ev.KillSwitchEngaged(T0, by="operator", reason="fat finger"))
    await j.close()
    j = await Journal.open(path)
    state = await j.load_kill_state()
    assert state is not None
    assert state["engaged"] is True
    assert state["reason"] == "fat finger"
    j.append(ev.KillSwitchReset(T0, by="operator", reason="checked positions"))
    await j.flush()
    assert (await j.load_kill_state())["engaged"] is False  # type: ignore[index]
    await j.close()


async def test_attach_when_bus_publishes_then_every_event_journaled(journal: Journal) -> None:
    bus = EventBus()
    journal.attach(bus.subscribe("journal", lossless=True, maxsize=10))
    for i in range(50):
        bus.publish(ev.AlertRaised(T0, Alert(AlertLevel.INFO, "test", f"alert {i}", T0)))
    bus.publish(ev.OperatorAction(T0, who="op", action="reset_kill", why="typed reason", before="HALTED",
                                  after="ACTIVE"))
    await journal.flush()
    assert await journal.count("alerts") == 50
    assert await journal.count("operator_actions") == 1


async def test_write_when_file_becomes_unwritable_then_failure_reported_and_events_kept(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    failures: list[BaseException] = []
    j = await Journal.open(path, on_failure=failures.append)
    with sqlite3.connect(path) as other:  # from now on every write to the log fails, whoever makes it
        other.execute("CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    j.append(ev.OrderUpdated(T0, make_order("R1", OrderStatus.SENDING)))
    with pytest.raises(sqlite3.Error, match="disk full"):
        await j.flush()
    assert failures
    assert j.failed is not None
    assert j.backlog == 1
    assert await j.count("orders") == 0, "a failed batch leaves nothing behind"
    with sqlite3.connect(path) as other:
        other.execute("DROP TRIGGER refuse")
    await j.flush()
    assert j.failed is None
    assert [o.order_ref for o in await j.orders()] == ["R1"]
    await j.close()


async def test_write_when_another_process_holds_the_write_lock_then_committed_once_it_lets_go(
        tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    j = await Journal.open(path)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # e.g. `tui-trader kill` from a shell, mid-write
    j.append(ev.OrderUpdated(T0, make_order("R1", OrderStatus.SENDING)))
    flushing = asyncio.create_task(j.flush())
    await asyncio.sleep(0)
    assert not flushing.done(), "nothing can be committed while another connection holds the write lock"
    holder.execute("COMMIT")
    await asyncio.wait_for(flushing, 10)
    holder.close()
    assert j.failed is None
    assert [o.order_ref for o in await j.orders()] == ["R1"]
    await j.close()


def alerts(n: int) -> list[ev.AlertRaised]:
    return [ev.AlertRaised(T0, Alert(AlertLevel.INFO, "test", f"alert {i}", T0)) for i in range(n)]


async def logged_alerts(journal: Journal) -> list[str]:
    return [e.alert.text for e in await journal.events(kinds=["AlertRaised"])]  # type: ignore[attr-defined]


async def test_flush_when_backlog_spans_many_slices_then_loop_runs_between_and_all_kept_in_order(
        journal: Journal) -> None:
    turns = 0

    async def other_work() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    for event in alerts(2_000):  # batch_size 200: at least ten slices whatever the machine's speed
        journal.append(event)
    other = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    turns = 0
    await journal.flush()
    other.cancel()
    assert turns >= 9, "the loop ran other work between the slices of one flush"
    assert journal.backlog == 0
    assert await logged_alerts(journal) == [f"alert {i}" for i in range(2_000)]
    assert await journal.count("alerts") == 2_000


async def test_flush_when_a_slice_fails_mid_backlog_then_earlier_slices_kept_and_the_rest_queued_in_order(
        tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    failures: list[BaseException] = []
    j = await Journal.open(path, on_failure=failures.append)
    with sqlite3.connect(path) as other:  # the 1,500th event cannot be written
        other.execute("CREATE TRIGGER refuse BEFORE INSERT ON alerts WHEN NEW.text = 'alert 1500' "
                      "BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    for event in alerts(2_000):
        j.append(event)
    with pytest.raises(sqlite3.Error, match="disk full"):
        await j.flush()
    kept = await logged_alerts(j)
    assert failures
    # Slices are sized by time: one may end exactly before the 1,500th event, which then fails alone.
    assert len(kept) <= 1_500
    assert kept == [f"alert {i}" for i in range(len(kept))], "a prefix, in order"
    assert await j.count("alerts") == len(kept), "the failed slice left nothing behind"
    assert j.backlog == 2_000 - len(kept)
    with sqlite3.connect(path) as other:
        other.execute("DROP TRIGGER refuse")
    await j.flush()
    assert j.failed is None
    assert await logged_alerts(j) == [f"alert {i}" for i in range(2_000)], "each once, in order"
    await j.close()


async def test_writer_when_events_arrive_in_bulk_then_committed_in_order_without_flush(tmp_path: Path) -> None:
    j = await Journal.open(tmp_path / "j.sqlite", batch_size=100, flush_interval_ms=1)
    for event in alerts(1_000):
        j.append(event)
    for _ in range(2_000):
        if j.written == 1_000:
            break
        await asyncio.sleep(0.005)
    assert j.written == 1_000
    assert await logged_alerts(j) == [f"alert {i}" for i in range(1_000)]
    await j.close()


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from datetime import UTC, datetime
    from pathlib import Path
    from tui_trader.domain import Fill, Side
    from tui_trader.domain import events as ev
    from tui_trader.store import Journal

    async def main(path):
        j = await Journal.open(Path(path), batch_size=500, flush_interval_ms=1)
        n = 0
        while True:
            for _ in range(500):
                now = datetime.now(UTC)
                j.append(ev.OrderFilled(now, Fill(f"E{n}", "R", "SPY", Side.BUY, 1, 1.0, now)))
                n += 1
            await j.flush()
            print(n, flush=True)

    asyncio.run(main(sys.argv[1]))
    """
)


def test_journal_when_writer_sigkilled_mid_batch_then_committed_rows_survive_and_file_sound(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    committed = 0
    for line in proc.stdout:
        committed = int(line)
        if committed >= 20_000:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
        events = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    assert rows >= committed
    assert rows == events, "an event's rows are committed together or not at all"


async def test_book_events_when_checkpointed_twice_then_from_the_newest_checkpoint_on(journal: Journal) -> None:
    # The book is saved every 30 s while it moves: a start read (and decoded) every save since the journal began.
    for event in (ev.BookCheckpointed(T0, {"cash": 1.0}, "first"), ev.OrderFilled(T0, make_fill("E1")),
                  ev.BookCheckpointed(T0, {"cash": 2.0}, "periodic"), ev.OrderFilled(T0, make_fill("E2")),
                  ev.CommissionReported(T0, "E2", 1.0)):
        journal.append(event)
    await journal.flush()
    kinds = ("BookCheckpointed", "OrderFilled", "CommissionReported")

    got = await journal.book_events(kinds)

    assert [type(e).__name__ for e in got] == ["BookCheckpointed", "OrderFilled", "CommissionReported"]
    assert got[0].state == {"cash": 2.0}  # type: ignore[attr-defined]


async def test_book_events_when_never_checkpointed_then_every_one(journal: Journal) -> None:
    journal.append(ev.OrderFilled(T0, make_fill("E1")))
    await journal.flush()
    assert [e.fill.exec_id for e in await journal.book_events(("BookCheckpointed", "OrderFilled"))] == ["E1"]  # type: ignore[attr-defined]


async def test_book_positions_when_fills_journaled_around_a_checkpoint_then_the_book_the_engine_rebuilds(
        journal: Journal) -> None:
    # Arrange: a checkpoint holding 10 SPY (E1's 5 already in it); E2, executed before it but heard after it
    # (journaled later), is not in it; E3 executed after the instant asked about; a later checkpoint too.
    second = timedelta(seconds=1)
    book = {"positions": {"SPY": [10.0, 500.0, 0.0, None]}}
    for event in (ev.OrderFilled(T0 - second, make_fill("E1", at=T0 - second)),
                  ev.BookCheckpointed(T0, book, "periodic"),
                  ev.OrderFilled(T0 + second, make_fill("E2", at=T0 - second)),
                  ev.OrderFilled(T0 + 3 * second, make_fill("E3", at=T0 + 3 * second)),
                  ev.BookCheckpointed(T0 + 3 * second, {"positions": {}}, "periodic")):
        journal.append(event)
    await journal.flush()
    # Act / Assert
    assert await journal.book_positions(T0 + 2 * second) == {"SPY": 15.0}
    assert await journal.book_positions(T0) == {"SPY": 10.0}  # no checkpoint before: E1 and E2, executed before
    assert await journal.book_positions(T0 + 4 * second) == {}


async def test_last_event_time_when_many_older_rows_appended_after_the_newest_then_still_the_newest(
        journal: Journal) -> None:
    # Arrange: the newest event, then over a thousand with older times appended after it (its guess read
    # only the last 1,000 rows), and one after the bound.
    hour = timedelta(hours=1)
    journal.append(ev.OperatorAction(T0 + hour, "alice", "note", "the newest", "", ""))
    for i in range(1_001):
        journal.append(ev.CommissionReported(T0 - timedelta(seconds=i), f"E{i}", 1.0))
    journal.append(ev.OperatorAction(T0 + 3 * hour, "alice", "note", "after the bound", "", ""))
    await journal.flush()
    # Act / Assert
    assert await journal.last_event_time(T0 + 2 * hour) == T0 + hour
    assert await journal.last_event_time(T0 + hour) == T0
    assert await journal.last_event_time(T0 - 2 * hour) is None


async def test_events_and_fills_when_bounds_in_another_time_zone_then_compared_as_instants(
        journal: Journal) -> None:
    # Arrange: stored in UTC; 02:30 UTC on the 5th is 21:30 on the 4th in New York (text compared it as later
    # than New York's midnight of the 5th, "2026-03-05T00:00:00-05:00").
    ny = ZoneInfo("America/New_York")
    evening = datetime(2026, 3, 5, 2, 30, tzinfo=UTC)
    journal.append(ev.OperatorAction(evening, "alice", "kill", "evening", "ACTIVE", "HALTED"))
    journal.append(ev.OrderFilled(evening, Fill("x1", "r1", "AAPL", Side.BUY, 1, 100.0, evening), None))
    await journal.flush()
    fourth, fifth = datetime(2026, 3, 4, tzinfo=ny), datetime(2026, 3, 5, tzinfo=ny)
    # Act / Assert
    assert await journal.events(["OperatorAction"], since=fifth) == []
    assert len(await journal.events(["OperatorAction"], since=fourth, until=fifth)) == 1
    assert await journal.events(["OperatorAction"], since=fourth, until=evening) == []  # the end excluded
    assert await journal.fills(since=fifth) == []
    assert [f.exec_id for f in await journal.fills(since=fourth, until=fifth)] == ["x1"]


def _schema_3_file_with_a_fill(path: Path) -> None:
    """A journal of schema 3 (before the fills' permanent id) holding one fill, written as that version wrote it."""
    write_old_journal(path, 3, [ev.OrderFilled(T0, Fill("E1", "bot1", "SPY", Side.BUY, 5, 500.0, T0, broker_id=7,
                                                        commission=1.25), None)])


async def test_open_when_a_file_before_the_fills_permanent_id_then_migrated_and_its_fills_read_without_one(
        tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _schema_3_file_with_a_fill(path)
    j = await Journal.open(path)
    try:
        j.append(ev.OrderFilled(T0, Fill("E2", "bot1#77", "SPY", Side.BUY, 3, 501.0, T0, broker_id=8, perm_id=77)))
        await j.flush()
        fills = [(f.exec_id, f.order_ref, f.perm_id, f.commission) for f in await j.fills()]
    finally:
        await j.close()
    assert fills == [("E1", "bot1", None, 1.25), ("E2", "bot1#77", 77, None)]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5


async def test_fills_when_read_only_from_a_file_before_their_permanent_id_then_read_and_the_file_not_migrated(
        tmp_path: Path) -> None:
    from tui_trader.ops.report_cli import open_readonly, readonly_uri

    path = tmp_path / "old.sqlite"
    _schema_3_file_with_a_fill(path)
    reader = await open_readonly(path, readonly_uri(path))
    try:
        fills = [(f.exec_id, f.order_ref, f.perm_id) for f in await reader.fills()]
    finally:
        await reader.close()
    assert fills == [("E1", "bot1", None)]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3


def _times(*hhmm: str) -> dict[str, datetime]:
    return {t: T0.replace(hour=int(t[:2]), minute=int(t[3:])) for t in hhmm}


SHARED_TIMES = _times("09:00", "10:00", "10:10", "10:20", "10:30", "10:50", "11:00", "11:30", "11:50", "12:00")
CERTAIN_ONLY = {"x1": 901, "x2": 22, "x3": None, "x4": None, "x5": 902, "x6": None}
"""The permanent ids the journal of :func:`shared_ref_events` says for certain (see there why each)."""


@pytest.mark.parametrize("version", [3, 4])
async def test_open_when_old_fills_without_permanent_ids_then_migrated_with_the_certain_ones_only(
        tmp_path: Path, version: int) -> None:
    # Arrange: fills journaled before schema 4 (or in the rows 4 left NULL): none has its order's permanent id.
    path = tmp_path / "old.sqlite"
    write_old_journal(path, version, shared_ref_events(SHARED_TIMES))
    # Act
    j = await Journal.open(path)
    await j.close()
    # Assert: one certain where the event log or the only order under its ref says it; NULL where it cannot tell.
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
        perms = dict(conn.execute("SELECT exec_id, perm_id FROM fills").fetchall())
    conn.close()
    assert perms == CERTAIN_ONLY


async def test_fills_when_read_only_from_an_old_file_then_the_certain_permanent_ids_and_the_file_not_migrated(
        tmp_path: Path) -> None:
    from tui_trader.ops.report_cli import open_readonly, readonly_uri

    path = tmp_path / "old.sqlite"
    write_old_journal(path, 3, shared_ref_events(SHARED_TIMES))
    reader = await open_readonly(path, readonly_uri(path))
    try:
        fills = await reader.fills()
        doubts = await reader.fill_doubts(fills)
    finally:
        await reader.close()
    assert {f.exec_id: f.perm_id for f in fills} == CERTAIN_ONLY
    assert doubts == {
        "x3": "2 orders were journaled under orderRef bot1: bot1 (permId 11), bot1#22 (permId 22)",
        "x4": "2 orders were journaled under orderRef bot2: bot2 (permId 5), bot2 (permId 6)",
        "x6": "the order journaled under orderRef tt1-3 is a BUY of NVDA"}
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    conn.close()


async def test_fill_doubts_when_the_shared_order_ref_holds_the_separator_then_both_orders_under_it_counted(
        journal: Journal) -> None:
    # Arrange: another tool's orderRef "a#b" with two orders, the second adopted as "a#b#22"; a fill under "a#b"
    # without a permanent id. Read at its first '#', "a#b#22" was counted under "a": the fill was "a#b"'s for certain.
    first = Order("a#b", make_order("a#b", OrderStatus.SUBMITTED).ticket, OrderStatus.SUBMITTED, T0, T0, broker_id=7,
                  perm_id=11)
    second = Order("a#b#22", first.ticket, OrderStatus.SUBMITTED, T0, T0, broker_id=8, perm_id=22)
    for order in (first, second):
        journal.append(ev.OrderUpdated(T0, order, OrderStatus.SUBMITTED))
    fill = make_fill("x1", "a#b")
    journal.append(ev.OrderFilled(T0, fill, None))
    await journal.flush()
    # Act
    doubts = await journal.fill_doubts([fill])
    # Assert
    assert doubts == {"x1": "2 orders were journaled under orderRef a#b: a#b (permId 11), a#b#22 (permId 22)"}
