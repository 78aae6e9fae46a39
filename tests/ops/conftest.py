"""Fixtures of the operations tests: loopback HTTP and SMTP servers, a certificate, eventually()."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from .servers import HttpServer, RecordingHandler, self_signed, smtp_server

SMTP_USER, SMTP_PASSWORD = "trader", "s3cret-smtp-pw"


async def eventually(predicate: Callable[[], object], within: float = 5.0, what: str = "") -> None:
    """Wait until ``predicate()`` is truthy, polling the loop; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {within}s: {what or predicate}")
        await asyncio.sleep(0.01)


@pytest.fixture
async def http() -> AsyncIterator[HttpServer]:
    """An HTTP server on 127.0.0.1 recording requests."""
    server = await HttpServer().start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def smtp(certificate: tuple[Path, Path]) -> Iterator[tuple[int, RecordingHandler]]:
    """An SMTP server on 127.0.0.1 requiring STARTTLS and a login: (port, recorded messages)."""
    controller, handler = smtp_server(*certificate, SMTP_USER, SMTP_PASSWORD)
    controller.start()
    yield controller.port, handler
    controller.stop()
