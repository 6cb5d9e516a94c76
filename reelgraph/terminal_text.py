"""Text from users and the pool, made safe to print: no terminal control sequences, no rich markup.

A caption or prompt may hold ANSI escape sequences (``\\x1b[2J`` clears the
screen, OSC 8 forges links, ``\\r`` overwrites a line) or other control
characters. :func:`visible` writes every C0/C1 control character except
newline and tab as a ``\\xNN`` escape, so it shows as text and does nothing.
"""

from __future__ import annotations

import re

from rich.markup import escape as escape_markup

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """``text`` with control characters (not ``\\n`` or ``\\t``) written as ``\\xNN``."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def escape(text: str) -> str:
    """:func:`visible` ``text``, escaped for rich markup: the user's text prints as itself."""
    return escape_markup(visible(text))
