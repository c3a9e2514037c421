"""Whether the process that owns something (a run being analysed, a daemon's data folder) is still alive.

One check for the batch runner's dead-run reclaim and the daemon's pid file.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["pid_alive"]


def pid_alive(pid: int) -> bool:
    """Whether process `pid` still runs here: a zombie (killed, not yet reaped by its parent) counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A killed process stays in the table until its parent reaps it; `kill(pid, 0)` still succeeds then.

    Seen in the cluster test: a worker node killed, its unit retried elsewhere within the same second, and the
    dead owner judged alive, so its run stayed `running` forever. Linux says so in /proc; elsewhere we cannot tell.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # the state letter follows the command name, which is in parentheses and may itself hold spaces or ')'
    return stat[stat.rfind(")") + 2:][:1] == "Z"
