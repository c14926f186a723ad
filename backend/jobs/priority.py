"""Background training yields the CPU to requests.

A training thread beside the API (or beside the worker's event processing) competes with
them for the same cores; at the lowest priority the scheduler gives it only what they leave.
On Linux a thread is a schedulable task with its own nice value: ``setpriority`` on its
native id lowers that thread alone, not the process. Elsewhere nothing changes.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger(__name__)

LOWEST = 19


def lower_this_thread(niceness: int = LOWEST) -> int | None:
    """Set the calling thread's nice value to ``niceness`` (never raises it back: an already
    lower priority stays); returns the value now in force, None where threads have none."""
    if sys.platform != "linux":
        return None
    tid = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        if current < niceness:
            os.setpriority(os.PRIO_PROCESS, tid, niceness)
        return os.getpriority(os.PRIO_PROCESS, tid)
    except OSError:  # a sandbox may forbid it; training then simply competes as before
        log.warning("could not lower the training thread's priority", exc_info=True)
        return None
