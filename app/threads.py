"""Background threads that give way to requests.

The warm-up (``app.prewarm``) and the what-if runs (``app.services.whatif_jobs``) fit patients
in threads of the web worker. On Linux a thread is its own scheduling entity, so lowering its
nice value leaves the request threads first in line for the CPU (the GIL is still shared).
"""

from __future__ import annotations

import contextlib
import os
import threading

#: nice increment of a background thread (0 = the request threads' priority, 19 = lowest)
BACKGROUND_NICE = 10


def lower_priority() -> None:
    """Run this thread at ``BACKGROUND_NICE`` (a ThreadPoolExecutor ``initializer``); a
    platform without per-thread priorities keeps the default."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
