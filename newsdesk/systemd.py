"""systemd's notify protocol (sd_notify), spoken directly: readiness, watchdog, status, stop.

Under `Type=notify` systemd sets NOTIFY_SOCKET to a unix datagram socket; each message is a
few `KEY=value` lines. Without NOTIFY_SOCKET every call here does nothing, so the daemon runs
the same from a terminal. See sd_notify(3).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Sends notifications to the socket systemd named, if any; never raises."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # "@name" is Linux's abstract namespace: the address starts with a NUL byte.
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._watchdog_seconds = _watchdog_seconds(env)
        self._warned = False

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    @property
    def watchdog_interval(self) -> float | None:
        """How often to ping the watchdog (half its timeout), or None when it is off."""
        return None if self._watchdog_seconds is None else self._watchdog_seconds / 2

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def reloading(self) -> None:
        # Type=notify-reload wants the monotonic time with RELOADING=1; CLOCK_MONOTONIC is
        # what time.monotonic_ns reads on Linux.
        self.send("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")

    def send(self, *fields: str) -> None:
        if not self._address:
            return
        payload = "\n".join(fields).encode("utf-8")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(payload, self._address)
        except OSError as error:
            if not self._warned:  # once: a broken socket would otherwise flood the log
                log.warning("systemd_notify_failed socket=%s error=%s", self._address, error)
                self._warned = True


def _watchdog_seconds(env: Mapping[str, str]) -> float | None:
    """WATCHDOG_USEC in seconds, when the watchdog is meant for this process."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1_000_000
