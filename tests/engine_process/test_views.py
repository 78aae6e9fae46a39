"""What the proxy shows when the engine process cannot say for itself."""

from __future__ import annotations

from dataclasses import replace

from engine_process.test_delta import order, snapshot
from tui_trader.domain.enums import ConnectionState, OrderStatus
from tui_trader.engine.process import views

S = OrderStatus


def test_after_global_cancel_then_cancelled_ones_cancelled_vanished_ones_unknown_others_as_they_were() -> None:
    before = snapshot((order("t1"), order("t2"), order("t3"), order("t4", S.FILLED)), {}, {})

    after = views.after_global_cancel(before, cancelled={"t1"}, remaining={"t3"})

    assert [o.status for o in after.orders] == [S.CANCELLED, S.UNKNOWN, S.SUBMITTED, S.FILLED]
    assert "out-of-band kill" in after.orders[0].history[-1].note
    assert [o.order_ref for o in after.account.working_orders] == ["t2", "t3"]  # UNKNOWN may still work


def test_engine_process_down_then_the_link_neither_connected_since_nor_with_a_round_trip() -> None:
    # The pane kept "Connected 10:31:02" and "Round trip 0.8 ms" of a link the dead engine no longer had.
    before = snapshot((), {}, {})
    before = replace(before, connection=replace(before.connection, state=ConnectionState.CONNECTED,
                                                connected_since=before.time, round_trip_ms=0.8))

    after = views.down(before, "the engine process closed its channel")

    assert after.connection.state is ConnectionState.DISCONNECTED
    assert (after.connection.connected_since, after.connection.round_trip_ms) == (None, None)
