"""One daemon per database: the lock row, on SQLite and (when reachable) PostgreSQL."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import timedelta

import pytest
from conftest import NOW

from newsdesk.errors import DaemonError
from newsdesk.lock import acquire
from newsdesk.store import LockHolder, Store

STALE = timedelta(seconds=60)


def plant(store: Store, pid: int, host: str, heartbeat_age: timedelta) -> LockHolder:
    """A lock row as another daemon would have left it."""
    holder = LockHolder("other-token", pid, host, NOW - timedelta(hours=1), NOW - heartbeat_age)
    assert store.claim_lock(holder, replacing=None)
    return holder


def test_the_first_daemon_takes_the_lock_and_keeps_it_alive(store: Store) -> None:
    lock = acquire(store, NOW, STALE)
    holder = store.lock_holder()
    assert holder is not None and holder.token == lock.holder.token
    assert lock.heartbeat(NOW + timedelta(seconds=15))
    assert store.lock_holder().heartbeat == NOW + timedelta(seconds=15)  # type: ignore[union-attr]
    lock.release()
    assert store.lock_holder() is None


def test_a_live_daemon_on_another_host_is_named_and_refuses_the_second(store: Store) -> None:
    plant(store, 4242, "web1.example.org", timedelta(seconds=5))
    with pytest.raises(DaemonError) as caught:
        acquire(store, NOW, STALE)
    message = str(caught.value)
    assert "pid 4242 on host web1.example.org" in message
    assert "last heartbeat 5 s ago" in message
    assert store.lock_holder().token == "other-token"  # type: ignore[union-attr]


def test_a_silent_daemon_on_another_host_is_taken_over(store: Store) -> None:
    plant(store, 4242, "web1.example.org", timedelta(seconds=61))
    lock = acquire(store, NOW, STALE)
    assert store.lock_holder().token == lock.holder.token  # type: ignore[union-attr]
    # The old daemon, should it wake up, learns on its next heartbeat that it lost the lock.
    assert not store.heartbeat_lock("other-token", NOW)


def test_a_dead_pid_on_this_host_frees_the_lock_at_once(store: Store) -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    plant(store, finished.pid, socket.gethostname(), timedelta(seconds=1))
    lock = acquire(store, NOW, STALE)
    assert lock.holder.pid != finished.pid


def test_a_live_pid_on_this_host_keeps_the_lock(store: Store) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        plant(store, sleeper.pid, socket.gethostname(), timedelta(seconds=1))
        with pytest.raises(DaemonError, match=f"pid {sleeper.pid} on host"):
            acquire(store, NOW, STALE)
    finally:
        sleeper.kill()
        sleeper.wait()
