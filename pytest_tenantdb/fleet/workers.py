"""Worker processes that end with the process that started them.

A migration's workers hold tenants mid-transaction. When the parent dies (killed, crashed),
workers that ran on would keep migrating while a new run starts on the same tenants; so on
Linux the kernel kills them with the parent (``PR_SET_PDEATHSIG``), and elsewhere a thread
watches the parent and ends the worker when it is gone. SQLite rolls back what they were doing.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1
WATCH_INTERVAL = 0.5


def die_with_parent(parent: int) -> None:
    """Make this process end when ``parent`` (the pid that started it) is gone."""
    if not _kernel_kills_orphans():
        threading.Thread(target=_watch, args=(parent,), name="tenantdb-parent-watch", daemon=True).start()
    if os.getppid() != parent:  # the parent died before the above was in place
        os.kill(os.getpid(), signal.SIGKILL)


def _kernel_kills_orphans() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(WATCH_INTERVAL)
    os.kill(os.getpid(), signal.SIGKILL)
