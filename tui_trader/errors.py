"""The TraderError hierarchy: every error the operator may see carries a short title."""

from __future__ import annotations


class TraderError(Exception):
    """Base of every error tui-trader reports to the operator.

    Args:
        message: What went wrong, in one or a few lines, naming the problem.
        title: A short heading for panels and modals.
    """

    title = "Error"

    def __init__(self, message: str, title: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if title is not None:
            self.title = title


class ConfigError(TraderError):
    """The configuration (file, environment or flags) is invalid; exit code 2."""

    title = "Configuration error"


class UsageError(TraderError):
    """The command line contradicts itself or asks for something refused; exit code 2."""

    title = "Usage error"


class BrokerError(TraderError):
    """The broker refused or failed a request."""

    title = "Broker error"


class SafetyError(TraderError):
    """A safety guard refused an action (wrong account type, kill switch engaged, ...)."""

    title = "Refused for safety"


class UnknownOrderError(TraderError, KeyError):
    """No order (or no pending approval) of that ref: it ended and was forgotten, or never was.

    A ``KeyError`` as well (what a lookup by ref raises), and a :class:`TraderError` so the console
    says it in an alert: a cancel of a row the engine had just let go is not a crash.
    """

    title = "No such order"

    def __str__(self) -> str:
        return self.message  # not KeyError's repr of it


class JournalError(TraderError):
    """The journal could not be written; trading halts."""

    title = "Journal failure"


class EngineProcessDied(TraderError):
    """The console's engine process (:mod:`tui_trader.engine.process`) exited or stopped answering: the
    console can no longer command it."""

    title = "Engine process stopped"


class EngineDiedInFlight(EngineProcessDied):
    """The engine process died after a command was sent and before it answered: whether it was carried out
    is unknown (a command refused because the process was already gone raises :class:`EngineProcessDied`)."""

    title = "Outcome unknown"


class EngineNotAnswering(TraderError):
    """A synchronous call got no answer in time (the engine process may be overloaded or hung)."""

    title = "Engine not answering"


def failure_words(exc: BaseException) -> str:
    """A request's failure in a few words for an alert: its text (the broker adapter's timeouts say how long they
    waited: "no answer within 8 s"), else its type's name (never a repr: ``TimeoutError('…')``)."""
    return str(exc) or type(exc).__name__


def print_error(error: TraderError) -> None:
    """One short panel on stderr naming the problem (the CLI's, and the kill's with a configuration that did not
    load)."""
    from rich.console import Console
    from rich.panel import Panel
    from rich.text import Text

    # As plain text: a message quoting "[risk]" or "nosuch:X:" is not markup, nor an emoji code.
    Console(stderr=True).print(Panel(Text(error.message), title=error.title, border_style="red", expand=False))
