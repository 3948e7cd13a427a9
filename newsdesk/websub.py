"""WebSub: tell the hub which feeds changed (hub.mode=publish), so it pushes them to readers.

A hub that is down or refuses is logged and otherwise ignored: the feeds are already written,
and readers that poll still get them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import httpx

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0
BATCH = 50  # hub.url values per request, so one POST stays a reasonable size


def publish(hub: str, urls: Sequence[str], timeout: float = TIMEOUT_SECONDS) -> bool:
    """POST hub.mode=publish with every changed feed URL; True if the hub accepted them all."""
    if not hub or not urls:
        return True
    accepted = True
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            for start in range(0, len(urls), BATCH):
                batch = list(urls[start : start + BATCH])
                response = client.post(hub, data={"hub.mode": "publish", "hub.url": batch})
                if response.status_code >= 300:
                    accepted = False
                    log.warning(
                        "websub_refused hub=%s status=%d urls=%d body=%r",
                        hub,
                        response.status_code,
                        len(batch),
                        response.text[:200],
                    )
                else:
                    log.info("websub_published hub=%s urls=%d", hub, len(batch))
    except httpx.HTTPError as error:
        log.warning("websub_failed hub=%s error=%s: %s", hub, type(error).__name__, error)
        return False
    return accepted
