"""One daemon per database: a lock row holding the owner's pid, host and a heartbeat.

A second daemon on the same database refuses to start and names the first. A lock left by a
daemon that was killed does not block a restart: it is stale when its heartbeat is older than
`[schedule] lock_stale_seconds`, or at once when its owner ran on this host and that pid is gone.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from newsdesk.errors import DaemonError
from newsdesk.store import LockHolder, Store

log = logging.getLogger(__name__)


@dataclass
class DaemonLock:
    """A held lock; keep it alive with `heartbeat` and give it back with `release`."""

    store: Store
    holder: LockHolder

    def heartbeat(self, now: datetime) -> bool:
        """Refresh the heartbeat; False means another daemon took the lock over."""
        return self.store.heartbeat_lock(self.holder.token, now)

    def release(self) -> None:
        self.store.release_lock(self.holder.token)


def acquire(store: Store, now: datetime, stale_after: timedelta) -> DaemonLock:
    """Take the database's daemon lock, or raise DaemonError naming who holds it."""
    me = LockHolder(
        token=uuid.uuid4().hex,
        pid=os.getpid(),
        host=socket.gethostname(),
        started=now,
        heartbeat=now,
    )
    for _attempt in range(3):  # a lost insert or compare-and-swap race: look again
        current = store.lock_holder()
        if current is None:
            if store.claim_lock(me, replacing=None):
                return DaemonLock(store, me)
            continue
        reason = stale_reason(current, now, stale_after, me.host)
        if reason is None:
            age = max(0, round((now - current.heartbeat).total_seconds()))
            raise DaemonError(
                f"another newsdesk daemon is running on this database: pid {current.pid} on "
                f"host {current.host} (started {current.started:%Y-%m-%d %H:%M:%S}Z, last "
                f"heartbeat {age} s ago); stop it first, or if it is gone wait "
                f"{int(stale_after.total_seconds())} s for its lock to go stale"
            )
        log.warning(
            "lock_taken_over previous_pid=%d previous_host=%s reason=%s",
            current.pid,
            current.host,
            reason.replace(" ", "_"),
        )
        if store.claim_lock(me, replacing=current.token):
            return DaemonLock(store, me)
    raise DaemonError(
        "could not take the daemon lock: another newsdesk daemon is starting on this database "
        "at the same moment; try again"
    )


def stale_reason(
    holder: LockHolder,
    now: datetime,
    stale_after: timedelta,
    host: str,
    alive: Callable[[int], bool] | None = None,
) -> str | None:
    """Why the holder's lock may be taken over, or None while it is live."""
    if now - holder.heartbeat > stale_after:
        return f"heartbeat older than {int(stale_after.total_seconds())} s"
    if holder.host == host:
        if holder.pid == os.getpid():
            # Our own pid, yet not our token: an earlier run in a container where we are pid 1.
            return "pid reused by this process"
        if not (alive or pid_alive)(holder.pid):
            return f"pid {holder.pid} is not running"
    return None


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True
