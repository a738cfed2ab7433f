"""The one place a rich ``Console`` is built for tenantdb's own output.

On a terminal it is rich's console as it is (the terminal's width, wrapping, colour). Off a
terminal (a pipe, a file, a CI log) nothing is wrapped or cut: a line is as long as it is written,
one message or finding per line, so ``grep`` and log viewers see it whole. Rich alone would wrap
at 80 columns there (or at ``$COLUMNS``, which describes a terminal that is not there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

#: The width of a console that is not a terminal: wide enough that no table is squeezed and no
#: line folded (rich only pads to it what asks for the full width, which tenantdb never prints).
UNWRAPPED_WIDTH = 1_000_000


def make_console(*, stderr: bool = False, quiet: bool = False) -> Console:
    """A console on stdout (or ``stderr``): rich's behaviour on a terminal, unwrapped off one.
    It writes to ``sys.stdout`` / ``sys.stderr`` as they are when it prints (captured output
    included). Markup is off: text with ``[brackets]`` (paths, SQL) is printed as it is."""
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False, markup=False, quiet=quiet)
    if console.is_terminal:
        return console
    return Console(
        stderr=stderr,
        highlight=False,
        markup=False,
        quiet=quiet,
        width=UNWRAPPED_WIDTH,
        soft_wrap=True,
    )
