"""Trade records as the trade server keeps them and the engine records them: positions, orders, deals
(spec 3.6-3.9). Fields carry the MetaTrader5 package's names and int codes; times are UTC ns.
``side`` reads the direction of any of them as one enum.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from mt5tester.model import constants as C


class Side(IntEnum):
    """Direction of a position, order or deal: the sign of its exposure."""

    BUY = 1
    SELL = -1


BUY_TYPES = (C.ORDER_TYPE_BUY, C.ORDER_TYPE_BUY_LIMIT, C.ORDER_TYPE_BUY_STOP, C.ORDER_TYPE_BUY_STOP_LIMIT)
PENDING_TYPES = (
    C.ORDER_TYPE_BUY_LIMIT,
    C.ORDER_TYPE_SELL_LIMIT,
    C.ORDER_TYPE_BUY_STOP,
    C.ORDER_TYPE_SELL_STOP,
    C.ORDER_TYPE_BUY_STOP_LIMIT,
    C.ORDER_TYPE_SELL_STOP_LIMIT,
)


@dataclass(slots=True)
class Position:
    ticket: int
    identifier: int
    symbol: str
    type: int  # POSITION_TYPE_BUY 0 / SELL 1
    volume: float
    price_open: float
    sl: float
    tp: float
    time: int
    time_update: int
    magic: int = 0
    comment: str = ""
    reason: int = C.POSITION_REASON_EXPERT
    swap: float = 0.0  # accumulated, realised in the closing deal (spec 5.10)
    cursor: int = 0  # next bar index of the trigger data to scan for SL/TP
    no_gap_at_cursor: bool = False  # opened inside bar `cursor`: its open price came before the fill
    tick_from: int = 0  # tick modes: the next tick to scan has time >= tick_from (UTC ns)

    @property
    def side(self) -> Side:
        return Side.BUY if self.type == C.POSITION_TYPE_BUY else Side.SELL


@dataclass(slots=True)
class Order:
    ticket: int
    symbol: str
    type: int
    volume_initial: float
    volume_current: float
    price_open: float
    sl: float
    tp: float
    price_stoplimit: float
    time_setup: int
    type_time: int = C.ORDER_TIME_GTC
    type_filling: int = C.ORDER_FILLING_FOK
    time_expiration: int = 0  # UTC ns, 0 = none
    state: int = C.ORDER_STATE_PLACED
    time_done: int = 0
    magic: int = 0
    position_id: int = 0
    position_by_id: int = 0
    reason: int = C.ORDER_REASON_EXPERT
    comment: str = ""
    price_done: float = 0.0
    # The order this one replaced (a stop-limit's limit order, spec 5.3); 0 for a sent order. Not an MT5
    # field: it lets a journal attribute the replacement as it attributed the order it came from.
    origin: int = 0
    cursor: int = 0
    no_gap_at_cursor: bool = False
    tick_from: int = 0

    @property
    def side(self) -> Side:
        return Side.BUY if self.type in BUY_TYPES else Side.SELL


@dataclass(slots=True)
class Deal:
    ticket: int
    order: int
    time: int
    type: int
    entry: int
    reason: int
    position_id: int
    symbol: str
    volume: float
    price: float
    commission: float
    swap: float
    profit: float
    balance: float
    comment: str
    magic: int = 0
    fee: float = 0.0

    @property
    def side(self) -> Side | None:
        """BUY/SELL for a trade deal; None for balance, credit, commission and other non-trade deals."""
        if self.type == C.DEAL_TYPE_BUY:
            return Side.BUY
        return Side.SELL if self.type == C.DEAL_TYPE_SELL else None
