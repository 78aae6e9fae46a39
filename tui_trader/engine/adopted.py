"""Orders adopted from the broker: the ticket that says what the broker holds, and what the engine cannot re-send.

An order found working at the broker that the engine did not place (TWS, another tool, a run whose journal
was lost) is tracked as its own from then on: counted by the risk checks, shown, cancelled by the kill switch,
modifiable. Its ticket is the broker's order as the domain can say it: a trailing stop with its trail and the
stop where it stands, its extended-hours flag, its time in force. What the domain cannot hold is said, never
replaced by something it can: a type it does not model is ``OrderType.OTHER``, not MKT; a GTD order is GTD,
its date in the ticket's reason. A modify re-sends the whole order, so such an order is refused one
(:func:`not_resendable`) rather than sent back to the broker as another.

An order that can only take the position the broker holds down (:func:`protects`: a stop typed into TWS, a
bracket's stop whose journal was lost) is adopted reduce-only, as the position's protection: an automatic trip
keeps it, the positions show it as the stop, the protective cuts fit it to the position. A symbol's orders are
judged together (:func:`judge_protection`), not one by one: two stops of 10 not linked under a long of 10 would both
trigger and leave the account short 10, so only what fits beside the protection already working is protection;
the orders of one OCA group count once (one fill cancels or reduces the others), at their largest.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass

from tui_trader.broker.base import BrokerOrderReport
from tui_trader.domain.alerts import listed
from tui_trader.domain.enums import OrderType, TimeInForce
from tui_trader.domain.orders import Order, OrderTicket, shared_ref_name
from tui_trader.domain.portfolio import held_words

ADOPTED = "adopted"
"""The strategy of an order adopted from the broker."""
FOUND = "found working at the broker"
"""How the reason of an adopted order's ticket begins."""
NOT_MODELLED = "not modelled here: "
"""How the reason of an adopted order goes on (after :data:`FOUND` and ``; ``) when the engine cannot re-send it."""


_PROTECTIVE_TYPES = frozenset({OrderType.STP, OrderType.STP_LMT, OrderType.TRAIL, OrderType.LMT})
"""The types an adopted order can be a position's protection with (a stop, or a target): not a market order, nor
one the engine does not model."""
_QTY_EPS = 1e-9


def adopted_ref(report: BrokerOrderReport, taken: bool = False) -> str:
    """The ref an order found at the broker is tracked under: its orderRef, else ``broker-<permId>``; with ``taken``
    (another order has its orderRef already), ``<orderRef>#<permId>`` (:func:`shared_ref_name`)."""
    key = report.perm_id or report.broker_id
    if not report.order_ref:
        return f"broker-{key}"
    return shared_ref_name(report.order_ref, key) if taken else report.order_ref


def adopted_refs(found: Iterable[BrokerOrderReport], tracked: Container[str],
                 journaled: Mapping[str, Order] | None = None) -> dict[BrokerOrderReport, str]:
    """The ref each of ``found`` (orders found working at the broker, none of them tracked here) is adopted under,
    each its own: its orderRef unless an order ``tracked`` here, one before it in ``found``, or another order in the
    journal (``journaled``: the journal's order under each orderRef it has, of those not tracked here:
    :func:`another_order`) has it already.

    Another tool (or a TWS user) may place several orders under one fixed orderRef: each is an order of its own,
    the first found under its orderRef, the others as ``<orderRef>#<permId>`` (:func:`adopted_ref`), which the
    journal keeps; the permanent id finds each again after a restart
    (:meth:`~tui_trader.engine.orders.OrderManager.named`). So is one found on a later day, or after a restart, when
    the earlier order under its orderRef has ended (and is no longer tracked): adopted under its orderRef, it took
    the earlier one's row in the journal (the orders table keeps one row per ref), whose figures and fills then read
    as the new order's.
    """
    refs: dict[BrokerOrderReport, str] = {}
    given: set[str] = set()
    earlier = journaled or {}
    for report in found:
        ref = adopted_ref(report, taken=report.order_ref in tracked or report.order_ref in given
                          or another_order(earlier.get(report.order_ref), report))
        refs[report] = ref
        given.add(ref)
    return refs


def another_order(journaled: Order | None, report: BrokerOrderReport) -> bool:
    """``journaled``, the journal's order under ``report``'s orderRef, is another order than ``report``'s: there is
    one, and not the same permanent id (one without any is another: one with none still open is tracked, so this one
    ended; only a permanent id says it is the same order)."""
    return journaled is not None and not (journaled.perm_id and journaled.perm_id == report.perm_id)


def adopted_ticket(report: BrokerOrderReport, protective: bool = False) -> OrderTicket:
    """The ticket of an order the broker reports working that the engine does not know; ``protective``: adopted
    as its position's protection, reduce-only (:func:`judge_protection`).

    A time in force not reported is ``OTHER`` (not assumed DAY: a GTC stop recorded DAY was settled EXPIRED
    on the next day, and a modify sent it back as a day order).
    """
    return OrderTicket(report.symbol, report.side, report.quantity, report.order_type,
                       limit_price=report.limit_price, stop_price=report.stop_price,
                       trail_amount=report.trail_amount, trail_percent=report.trail_percent,
                       tif=report.tif or TimeInForce.OTHER, outside_rth=report.outside_rth,
                       strategy=ADOPTED, reason=adopted_reason(report), reduce_only=protective)


def protects(report: BrokerOrderReport, held: float) -> bool:
    """The order can only take ``held`` (the broker's position in its symbol) down: a stop, stop limit, trailing
    stop or limit on the closing side, for no more than the position. Anything else (on the position's side,
    larger than it, with no position, a market order or a type not modelled) could add exposure."""
    return (report.order_type in _PROTECTIVE_TYPES and report.side.sign * held < 0
            and report.quantity <= abs(held) + _QTY_EPS)


@dataclass(frozen=True, slots=True)
class Claim:
    """A closing order of a symbol as the judgement of its protection counts it (:func:`judge_protection`)."""

    name: str
    """The order's ref."""
    group: str
    """Its OCA group (its own name when it is linked to none): a group's orders count once, at the largest."""
    quantity: float
    """What it would close."""
    stop: bool = False
    """A stop, stop limit or trailing stop (else a limit: a target)."""


@dataclass(frozen=True, slots=True)
class Judgement:
    """Which of a symbol's orders found at the broker are adopted as its position's protection."""

    protective: frozenset[str]
    """The refs of those adopted as protection."""
    warning: str = ""
    """What the operator is told of those that are not because, with the others, they would take the position
    through flat (``""``: none)."""


def claim_of(report: BrokerOrderReport, name: str = "") -> Claim:
    """``report``'s order, to be adopted as ``name`` (default: :func:`adopted_ref`), as the judgement counts it."""
    name = name or adopted_ref(report)
    return Claim(name, report.oca_group or name, report.quantity, report.order_type.is_stop)


def judge_protection(symbol: str, held: float, found: Sequence[BrokerOrderReport],
                     working: Sequence[Claim] = (), refs: Mapping[BrokerOrderReport, str] | None = None) -> Judgement:
    """Which of ``found`` (``symbol``'s orders found working at the broker, to adopt) are adopted as protection of
    ``held`` (the broker's position), judged together with ``working`` (the protection already working in it);
    ``refs``: the ref each is adopted under (:func:`adopted_refs`; default :func:`adopted_ref`).

    Each order that :func:`protects` the position on its own counts with its OCA group: a group once, at its
    largest order (one fill cancels or reduces the others), an order linked to none on its own. The groups fit in
    turn into what the working protection leaves of the position, those with a stop first (the stop is the one to
    keep, not a target linked to nothing), then as the broker listed them. A group that would take the position
    through flat is not protection, none of its orders (an automatic trip cancels them, as any order that could
    add exposure), and the warning names the orders and the figures.
    """
    claims = [claim_of(r, refs.get(r, "") if refs else "") for r in found if protects(r, held)]
    taken = _sizes(working)
    room = abs(held) - sum(taken.values())
    protective: list[Claim] = []
    refused: list[Claim] = []
    for group, members in sorted(_grouped(claims).items(), key=lambda g: not any(c.stop for c in g[1])):
        size = max(c.quantity for c in members)
        extra = max(0.0, size - taken.get(group, 0.0))
        if extra > room + _QTY_EPS:
            refused += members
            continue
        room -= extra
        taken[group] = max(size, taken.get(group, 0.0))
        protective += members
    names = frozenset(c.name for c in protective)
    return Judgement(names, _overreach(symbol, held, [*working, *protective, *refused], refused) if refused else "")


def _grouped(claims: Iterable[Claim]) -> dict[str, list[Claim]]:
    """``claims`` by OCA group, in the order they come."""
    groups: dict[str, list[Claim]] = {}
    for claim in claims:
        groups.setdefault(claim.group, []).append(claim)
    return groups


def _sizes(claims: Iterable[Claim]) -> dict[str, float]:
    """What each OCA group of ``claims`` would close: its largest order."""
    return {group: max(c.quantity for c in members) for group, members in _grouped(claims).items()}


def _overreach(symbol: str, held: float, counted: Sequence[Claim], refused: Sequence[Claim]) -> str:
    """``broker-7 and broker-8 together would sell 20 against AAPL LONG 10: broker-8 not adopted as protection
    ...``: the orders ``counted`` (an OCA group's as ``a/b (one OCA group)``) and those ``refused``."""
    groups = _grouped(counted)
    said = [f"{'/'.join(c.name for c in members)} (one OCA group)" if len(members) > 1 else members[0].name
            for members in groups.values()]
    verb = "sell" if held > 0 else "buy"
    total = sum(_sizes(counted).values())
    return (f"{listed(said)} together would {verb} {total:g} against {held_words(symbol, held)}: "
            f"{listed([c.name for c in refused])} not adopted as protection (if all of them filled, "
            f"the position would go through flat): an automatic trip cancels "
            f"{'it' if len(refused) == 1 else 'them'}, as any order that could add exposure")


def protection_note(ticket: OrderTicket, held: float) -> str:
    """``, adopted as protection of AAPL LONG 10`` for a reduce-only adopted ``ticket`` (``held``: the broker's
    position it protects); ``""`` for another."""
    if not ticket.reduce_only:
        return ""
    return f", adopted as protection of {held_words(ticket.symbol, held)}"


def adopted_reason(report: BrokerOrderReport) -> str:
    """``found working at the broker``, and what of the order the engine does not model, in the broker's words
    (``found working at the broker; not modelled here: time in force GTD 20260320 16:00:00 US/Eastern``)."""
    tif_words = " ".join(w for w in (report.raw_tif or "not reported", report.good_till) if w)
    said = _unmodelled(report.order_type, report.tif, report.raw_order_type or "not reported", tif_words)
    return f"{FOUND}; {NOT_MODELLED}{said}" if said else FOUND


def _unmodelled(order_type: OrderType, tif: TimeInForce | None, type_words: str, tif_words: str) -> str:
    """``order type MIT, time in force FOK``: what of an order the engine does not model ('' when nothing)."""
    words = (f"order type {type_words}" if not order_type.modelled else "",
             f"time in force {tif_words}" if tif is None or not tif.modelled else "")
    return ", ".join(w for w in words if w)


def adoption_note(ticket: OrderTicket) -> str:
    """What the operator is told of an adopted order beyond its figures: ``""`` when a modify can re-send it as
    it is, else why it cannot."""
    why = not_resendable(ticket)
    return f": {why}; it cannot be modified here (cancel it here, or change it in TWS)" if why else ""


def not_resendable(ticket: OrderTicket) -> str:
    """Why a modify cannot re-send ``ticket`` as the broker holds it (``""`` when it can): ``not modelled here:
    time in force GTD 20260320 16:00:00 US/Eastern``.

    A modify re-places the whole order under its id: an order type the engine does not model would go out as
    another, a GTD order without its date (the ticket does not keep it), an IOC or OPG one as a DAY or GTC order.
    """
    if ticket.order_type.modelled and ticket.tif.modelled:
        return ""
    _, found, said = ticket.reason.partition(NOT_MODELLED)
    return NOT_MODELLED + (said if found else _unmodelled(ticket.order_type, ticket.tif, ticket.order_type.value,
                                                          ticket.tif.value))
