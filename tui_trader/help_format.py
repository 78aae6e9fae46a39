"""The help formatter of every command line parser: lines break between words, never at a hyphen.

argparse's own wraps with :mod:`textwrap`'s default, which breaks at hyphens: a narrow terminal split
``--client-id`` into ``--client-`` at one line's end and ``id`` at the next's, a flag no one can type.
"""

from __future__ import annotations

import argparse
import re
import textwrap

_WHITESPACE = re.compile(r"\s+")


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, wrapping help, descriptions and epilogs only at whitespace."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(_WHITESPACE.sub(" ", text).strip(), width, break_on_hyphens=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return textwrap.fill(_WHITESPACE.sub(" ", text).strip(), width, initial_indent=indent,
                             subsequent_indent=indent, break_on_hyphens=False)
