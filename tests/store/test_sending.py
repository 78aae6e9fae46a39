"""The write-ahead SENDING record: what a restart reads when the process died before the next batch."""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum
from pathlib import Path

import pytest

from tests.engine.helpers import eventually
from tui_trader.domain import Order, OrderStatus, OrderTicket, OrderType, Side
from tui_trader.domain import events as ev
from tui_trader.domain.enums import TimeInForce
from tui_trader.domain.orders import Bracket, StatusChange
from tui_trader.store import Journal, sending
from tui_trader.store.schema import SCHEMA_VERSION

from .old_journal import create_schema

S = OrderStatus
T0 = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)


def _family() -> list[Order]:
    """A bracket entry with a stop and a target, as the order path holds it at SENDING."""
    ticket = OrderTicket("SPY", Side.BUY, 10, OrderType.LMT, limit_price=500.25, strategy="ema_cross",
                         reason="cross up", bracket=Bracket(stop_price=495.0, take_profit_price=510.0),
                         created_at=T0, tif=TimeInForce.GTC, outside_rth=True)
    parent = Order("tt1-1", ticket, S.PENDING_APPROVAL, T0, T0)
    stop = OrderTicket("SPY", Side.SELL, 10, OrderType.STP, stop_price=495.0, reduce_only=True, created_at=T0,
                       signal_price=500.1, reason="protective stop")
    child = Order("tt1-2", stop, S.PENDING_APPROVAL, T0, T0, parent_ref="tt1-1")
    sent = T0 + timedelta(milliseconds=3)
    return [o.with_status(S.APPROVED, T0, "approval not required").with_status(S.SENDING, sent, "journaled before send")
            for o in (parent, child)]


async def _statuses_after_restart(path: Path, running: Journal | None = None) -> dict[str, OrderStatus]:
    """The open orders' statuses as a restart reads the file (``running``, if any, is closed after)."""
    restarted = await Journal.open(path)
    try:
        return {o.order_ref: o.status for o in await restarted.open_orders()}
    finally:
        await restarted.close()
        if running is not None:
            await running.close()


async def _statuses_and_order(reader: Journal, listing: Callable[[Journal], Awaitable[list[Order]]], ref: str,
                              running: Journal) -> tuple[dict[str, OrderStatus], Order | None]:
    """``listing``'s orders by status and order ``ref``, as ``reader`` reads them; then both journals closed."""
    try:
        return {o.order_ref: o.status for o in await listing(reader)}, await reader.order(ref)
    finally:
        await reader.close()
        await running.close()


async def _engine_died_after_the_record(path: Path) -> tuple[Journal, list[Order]]:
    """The engine's journal after it appended a family's record before the wire and nothing after it
    (its writer never ran: the process is as good as dead). The caller closes it."""
    running = await Journal.open(path)
    family = _family()
    assert running.commit_orders_now(family)
    return running, family


def _same(a: Order, b: Order) -> bool:
    """Equal, NaN signal prices included (NaN != NaN)."""
    nan = math.isnan(a.ticket.signal_price) and math.isnan(b.ticket.signal_price)
    if nan:
        a = dataclasses.replace(a, ticket=dataclasses.replace(a.ticket, signal_price=0.0))
        b = dataclasses.replace(b, ticket=dataclasses.replace(b.ticket, signal_price=0.0))
    return a == b


def test_row_when_every_field_of_order_ticket_and_bracket_then_written() -> None:
    # A field added to one of these dataclasses must be added to the write-ahead row too.
    assert {f.name for f in dataclasses.fields(Order)} == set(sending.ORDER_FIELDS)
    assert {f.name for f in dataclasses.fields(OrderTicket)} == set(sending.TICKET_FIELDS)
    assert {f.name for f in dataclasses.fields(Bracket)} == set(sending.BRACKET_FIELDS)


def test_row_when_read_back_then_the_same_order(tmp_path: Path) -> None:
    # Arrange: every field away from its default, on a real file with the journal's schema.
    order, child = _family()
    order = dataclasses.replace(order, broker_id=7, perm_id=99, filled_quantity=2.0, avg_fill_price=500.2,
                                commission=1.5, last_error="201 margin",
                                history=(*order.history, StatusChange(S.SENDING, T0, "résumé ✓")))
    with sqlite3.connect(tmp_path / "j.sqlite") as conn:
        create_schema(conn, SCHEMA_VERSION)
        # Act
        conn.executemany(sending.INGEST_SQL, sending.rows([order, child]))
        read = sending.pending(conn)
    # Assert
    assert [o.order_ref for o in read] == ["tt1-1", "tt1-2"]
    assert _same(read[0], order)
    assert _same(read[1], child)


async def test_open_orders_when_process_died_after_the_sending_record_then_restart_finds_the_family(
        tmp_path: Path) -> None:
    # Arrange: the order path's record before the wire, and no batch after it (the writer never ran).
    path = tmp_path / "journal.sqlite"
    running, family = await _engine_died_after_the_record(path)
    # Act: a restart reads the same file while the dead run's events never made it.
    restarted = await Journal.open(path)
    try:
        found = await restarted.open_orders()
        one = await restarted.order("tt1-2")
    finally:
        await restarted.close()
        await running.close()
    # Assert
    assert [o.order_ref for o in found] == ["tt1-1", "tt1-2"]
    assert all(o.status is S.SENDING for o in found)
    assert all(_same(a, b) for a, b in zip(found, family, strict=True))
    assert one is not None
    assert _same(one, family[1])


async def test_open_orders_when_batch_wrote_later_states_then_write_ahead_superseded_and_pruned(
        tmp_path: Path) -> None:
    # Arrange: the SENDING record, then the events of the order's acknowledgement in a batch.
    path = tmp_path / "journal.sqlite"
    journal = await Journal.open(path)
    parent, child = _family()
    assert journal.commit_orders_now([parent, child])
    acked = parent.with_status(S.SUBMITTED, T0 + timedelta(seconds=1), "Submitted")
    journal.append(ev.OrderUpdated(acked.updated_at, acked, S.SENDING))
    await journal.flush()
    # Act
    found = {o.order_ref: o.status for o in await journal.open_orders()}
    await journal.close()
    reopened = await Journal.open(path)
    await reopened.close()
    # Assert: the acknowledged parent as the batch wrote it (once); the child still as written ahead.
    assert found == {"tt1-1": S.SUBMITTED, "tt1-2": S.SENDING}
    with sqlite3.connect(path) as conn:
        assert [r[0] for r in conn.execute("SELECT order_ref FROM sending")] == ["tt1-2"]


async def test_open_orders_when_batch_wrote_earlier_states_then_the_sending_record_wins(tmp_path: Path) -> None:
    # Arrange: an order that waited for approval: a batch wrote it PENDING_APPROVAL and APPROVED; then
    # the SENDING record before the wire, and the process died before the batch after it.
    path = tmp_path / "journal.sqlite"
    running = await Journal.open(path)
    parent, child = _family()
    for order in (parent, child):
        waiting = dataclasses.replace(order, status=S.PENDING_APPROVAL, history=order.history[:0])
        approved = waiting.with_status(S.APPROVED, T0, "approved by the operator")
        running.append(ev.OrderUpdated(T0, waiting, None))
        running.append(ev.OrderUpdated(T0, approved, S.PENDING_APPROVAL))
    await running.flush()
    assert running.commit_orders_now([parent, child])
    # Act: a restart reads the same file (and prunes what the batches caught up with).
    found, one = await _statuses_and_order(await Journal.open(path), Journal.open_orders, "tt1-1", running)
    # Assert: the order may be at the broker: it is SENDING, not an approval still to give.
    assert found == {"tt1-1": S.SENDING, "tt1-2": S.SENDING}
    assert one is not None
    assert one.status is S.SENDING
    with sqlite3.connect(path) as conn:
        assert sorted(r[0] for r in conn.execute("SELECT order_ref FROM sending")) == ["tt1-1", "tt1-2"]


def test_row_when_order_born_in_sending_then_read_back_the_same_with_the_history_as_json_writes_it(
        tmp_path: Path) -> None:
    # Arrange: as the order path creates it: one time object for created, updated and the SENDING step.
    now = datetime(2026, 11, 20, 9, 30, 0, 123456, tzinfo=timezone(timedelta(hours=-5)))
    ticket = OrderTicket("AAPL", Side.BUY, 1, OrderType.MKT, created_at=T0, signal_price=190.5)
    order = Order("tt1-9", ticket, S.SENDING, now, now, history=(
        StatusChange(S.APPROVED, now - timedelta(microseconds=40), 'approval "not" required \\ é\n'),
        StatusChange(S.SENDING, now, "journaled before send")))
    # Act
    (params,) = sending.rows([order])
    with sqlite3.connect(tmp_path / "j.sqlite") as conn:
        create_schema(conn, SCHEMA_VERSION)
        conn.execute(sending.INGEST_SQL, params)
        read = sending.pending(conn)
    # Assert
    history = params[sending.COLUMNS.index("history")]
    assert history == json.dumps([(h.status.value, h.time.isoformat(), h.note) for h in order.history])
    assert params[sending.COLUMNS.index("created_at")] == now.isoformat()
    assert _same(read[0], order)
    assert read[0].created_at.utcoffset() == timedelta(hours=-5)


def test_record_when_written_with_enum_members_then_the_same_bytes_as_with_their_values() -> None:
    # Arrange: a bracket family (every enum column set) as the order path sends it.
    family = _family()
    plain = [[v.value if isinstance(v, Enum) else v for v in row] for row in sending.rows(family)]
    # Act
    line = sending.record(family)
    # Assert: a log written before (with .value) and now read the same.
    assert line == (json.dumps(plain) + "\n").encode()
    assert [row[sending.COLUMNS.index("side")] for row in json.loads(line)] == [o.ticket.side.value for o in family]


async def test_log_when_process_died_inside_a_write_then_torn_line_skipped_and_next_record_stands_alone(
        tmp_path: Path) -> None:
    # Arrange: a complete record, then half of one (the process died inside the write: nothing sent after it).
    path = tmp_path / "journal.sqlite"
    parent, child = _family()
    log_file = sending.log_path(path)
    log_file.write_bytes(sending.record([parent]) + sending.record([child])[:40])
    # Act: the restarted engine appends its own next record to the same log, then a restart reads it.
    running = await Journal.open(path)
    later = dataclasses.replace(child, order_ref="tt1-3", parent_ref=None)
    assert running.commit_orders_now([later])
    found = await _statuses_after_restart(path, running)
    # Assert: the torn record is not read; the one written after it is.
    assert found == {"tt1-1": S.SENDING, "tt1-3": S.SENDING}
    assert log_file.read_bytes().count(b"\n") == 3  # the torn line was ended before the new record


async def test_log_when_folded_twice_then_one_row_per_record(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "journal.sqlite"
    running, _ = await _engine_died_after_the_record(path)
    # Act: every journal opened for writing folds the log into the table.
    for _ in range(2):
        reader = await Journal.open(path)
        await reader.open_orders()
        await reader.close()
    await running.close()
    # Assert
    with sqlite3.connect(path) as conn:
        assert sorted(r[0] for r in conn.execute("SELECT order_ref FROM sending")) == ["tt1-1", "tt1-2"]


async def test_log_when_past_its_size_then_rotated_folded_and_deleted_and_restart_still_finds_the_family(
        tmp_path: Path) -> None:
    # Arrange: a log that rotates after every record; no batch follows any of them.
    path = tmp_path / "journal.sqlite"
    running = await Journal.open(path, flush_interval_ms=1, sending_log_bytes=1)
    parent, child = _family()
    assert running.commit_orders_now([parent, child])
    # Act: the writer's next round rotates (an event wakes it), then a second family starts a new log.
    running.append(ev.OrderUpdated(T0, dataclasses.replace(parent, order_ref="tt9-1"), None))
    await running.flush()
    await eventually(lambda: not sending.log_path(path).exists() and not sending.rotated_path(path).exists(),
                     what="log moved, folded and deleted by the writer")
    with sqlite3.connect(path) as conn:
        folded = sorted(r[0] for r in conn.execute("SELECT order_ref FROM sending"))
    other = dataclasses.replace(child, order_ref="tt1-3", parent_ref=None)
    assert running.commit_orders_now([other])
    found = await _statuses_after_restart(path, running)
    # Assert: the first family was folded into the table before its file went; the second is in the new log.
    assert folded == ["tt1-1", "tt1-2"]
    assert found["tt1-1"] is S.SENDING
    assert found["tt1-2"] is S.SENDING
    assert found["tt1-3"] is S.SENDING


async def test_log_when_a_line_is_not_a_record_then_skipped_and_the_journal_still_opens(tmp_path: Path) -> None:
    # Arrange: valid JSON that is not a record, between two records.
    path = tmp_path / "journal.sqlite"
    parent, child = _family()
    sending.log_path(path).write_bytes(sending.record([parent]) + b'[["tt1-9", "SENDING"]]\n' + sending.record([child]))
    # Act
    found = sorted(await _statuses_after_restart(path))
    # Assert
    assert found == ["tt1-1", "tt1-2"]


async def test_migration_when_a_version_2_file_holds_a_record_twice_then_one_row_kept_and_the_log_folds_in(
        tmp_path: Path) -> None:
    # Arrange: a journal as the previous schema left it, the same record written twice.
    path = tmp_path / "journal.sqlite"
    (params,) = sending.rows(_family()[:1])
    with closing(sqlite3.connect(path)) as conn:
        create_schema(conn, 2)
        conn.executemany(sending.INGEST_SQL.replace("INSERT OR IGNORE", "INSERT"), [params, params])
        conn.commit()
    sending.log_path(path).write_bytes(sending.record(_family()))
    # Act
    found = sorted(await _statuses_after_restart(path))
    # Assert
    assert found == ["tt1-1", "tt1-2"]
    with closing(sqlite3.connect(path)) as conn:
        assert sorted(r[0] for r in conn.execute("SELECT order_ref FROM sending")) == ["tt1-1", "tt1-2"]


async def test_log_when_read_by_a_read_only_journal_then_its_records_are_seen_and_nothing_written(
        tmp_path: Path) -> None:
    # Arrange: the engine's record before the wire, no batch after it; `tui-trader report` opens the file read-only.
    from tui_trader.ops.report_cli import open_readonly, readonly_uri

    path = tmp_path / "journal.sqlite"
    running, family = await _engine_died_after_the_record(path)
    reader = await open_readonly(path, readonly_uri(path))
    # Act
    found, one = await _statuses_and_order(reader, Journal.orders, "tt1-2", running)
    # Assert
    assert found == {"tt1-1": S.SENDING, "tt1-2": S.SENDING}
    assert one is not None
    assert _same(one, family[1])


async def test_open_when_the_sending_log_cannot_be_read_then_the_error_and_no_connection_left_open(
        tmp_path: Path) -> None:
    # A sending log that is not a file (an OSError, not an sqlite3.Error): the open fails after its connection
    # opened, whose thread (not a daemon) kept the process from exiting while the error was held.
    path = tmp_path / "journal.sqlite"
    sending.log_path(path).mkdir()
    before = {t for t in threading.enumerate() if not t.daemon}

    with pytest.raises(IsADirectoryError) as raised:  # held, as a caller showing the error holds it (and its frames)
        await Journal.open(path)

    await eventually(lambda: {t for t in threading.enumerate() if not t.daemon} <= before,
                     what="the connection's thread ended")
    assert raised.value.filename == str(sending.log_path(path))
