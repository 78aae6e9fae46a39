"""A decoder error of ib_async said in the operator's words, without the message's bytes."""

from __future__ import annotations

import pytest

from tui_trader.broker.ib.decode_watch import fault_words


@pytest.mark.parametrize(("text", "said"), [
    ("Error handling fields: ['\\\\xc5\\\\xd7\\x14', '9']",
     "a malformed message from the gateway (2 fields, not decodable)"),
    ("Error handling fields: ['1']", "a malformed message from the gateway (1 field, not decodable)"),
    ("Error for tickPrice(['x', 'one']):", "a malformed tickPrice message from the gateway (its fields not decodable)"),
    ("Error handling fields: ['\\xc5", "a malformed message from the gateway (not decodable)"),  # cut short
    ("something else entirely", "a malformed message from the gateway (not decodable)")])
def test_fault_words_when_ib_async_cannot_decode_then_what_it_was_never_its_content(text: str, said: str) -> None:
    assert fault_words(text) == said
