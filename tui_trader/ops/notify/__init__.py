"""Notifications outside the console: Telegram, email and webhook channels behind one notifier."""

from __future__ import annotations

from tui_trader.ops.notify.channel import Channel, ChannelPolicy, ChannelStatus
from tui_trader.ops.notify.http import DeliveryError
from tui_trader.ops.notify.notice import KINDS, Notice, notice_for
from tui_trader.ops.notify.notifier import Notifier
from tui_trader.ops.notify.senders import EmailSender, Message, TelegramSender, WebhookSender

__all__ = [
    "KINDS", "Channel", "ChannelPolicy", "ChannelStatus", "DeliveryError", "EmailSender", "Message", "Notice",
    "Notifier", "TelegramSender", "WebhookSender", "notice_for",
]
