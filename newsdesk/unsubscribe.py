"""The unsubscribe endpoint: GET asks for confirmation, POST unsubscribes (RFC 8058 one-click).

`routes(config)` gives Starlette routes that `newsdesk serve` mounts. The token in the URL is
the whole authority: a POST with a valid token unsubscribes, whatever its body; mail clients
send `List-Unsubscribe=One-Click`. GET never changes anything, because link scanners and
prefetchers follow GET links in mail.
"""

from __future__ import annotations

import html
import logging
from datetime import UTC, datetime
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from newsdesk.config import Config
from newsdesk.i18n import messages
from newsdesk.store import Store
from newsdesk.tokens import unsubscribe_secret, verify_token

log = logging.getLogger(__name__)

_PAGE = """<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<meta name="color-scheme" content="light dark">
<title>{title}</title>
<style>body{{font-family:Arial,Helvetica,sans-serif;max-width:34em;margin:3em auto;padding:0 1em;
line-height:1.5}}button{{font-size:1em;padding:.6em 1.2em;cursor:pointer}}</style>
</head><body><h1>{title}</h1><p>{text}</p>{form}</body></html>
"""


def _page(language: str, title: str, text: str, form: str = "") -> str:
    return _PAGE.format(
        lang=html.escape(language), title=html.escape(title), text=html.escape(text), form=form
    )


def routes(config: Config) -> list[Route]:
    """The unsubscribe route, at the path of [digest] unsubscribe_url."""
    path = urlsplit(config.digest.unsubscribe_url).path or "/unsubscribe"
    opened: list[tuple[Store, bytes]] = []

    def store_and_secret() -> tuple[Store, bytes]:
        # Opened on first use, in a worker thread: routes() itself stays cheap and side-effect free.
        if not opened:
            store = Store.open(config.database_url())
            opened.append((store, unsubscribe_secret(config, store)))
        return opened[0]

    def language_of(store: Store, email: str) -> str:
        record = store.subscriber_record(email)
        return record.subscriber.language if record else "en"

    def handle(method: str, token: str) -> tuple[int, str]:
        store, secret = store_and_secret()
        email = verify_token(secret, token)
        if email is None:
            log.warning("unsubscribe_refused reason=bad_token")
            words = messages("en")
            return 400, _page("en", words["invalid_title"], words["invalid_text"])
        language = language_of(store, email)
        words = messages(language)
        if method == "GET":
            form = (
                f'<form method="post" action="{html.escape(path)}?token={html.escape(token)}">'
                '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
                f'<button type="submit">{html.escape(words["confirm_button"])}</button></form>'
            )
            text = words["confirm_text"].format(email=email)
            return 200, _page(language, words["confirm_title"], text, form)
        # The server's own clock: only the CLI, the daemon and the server read it.
        known = store.unsubscribe(email, datetime.now(UTC))
        log.info("unsubscribed email=%s known=%s", email, known)
        return 200, _page(language, words["done_title"], words["done_text"].format(email=email))

    async def endpoint(request: Request) -> HTMLResponse:
        token = request.query_params.get("token", "")
        status, body = await run_in_threadpool(handle, request.method, token)
        return HTMLResponse(
            body,
            status_code=status,
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )

    return [Route(path, endpoint, methods=["GET", "POST"], name="unsubscribe")]
