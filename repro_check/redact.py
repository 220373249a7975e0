"""Secrets out of storage URLs and of the messages that quote them: every report, console line
and error that names a storage goes through ``redact``."""

from __future__ import annotations

import re

_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][\w+.-]*://[^:/@]*:)(?P<pw>[^@]*)(?P<tail>@.*)$")
_QUERY_SECRET = re.compile(
    r"(?P<key>[?&](?:password|passwd|pwd|secret|token)=)(?P<pw>[^&#]*)", re.I
)


def _secrets(url: str) -> list[str]:
    found = [m["pw"] for m in _QUERY_SECRET.finditer(url) if m["pw"]]
    match = _PASSWORD.match(url)
    if match is not None and match["pw"]:
        found.append(match["pw"])
    return found


def redact(url: str) -> str:
    """``postgresql://user:secret@host/db?password=x`` → ``postgresql://user:***@host/db?password=***``."""
    return redact_text(url, url) or url


def redact_text(text: str | None, url: str | None) -> str | None:
    """Remove the URL's password(s) from any message (drivers like to quote URLs)."""
    if text is None or not url:
        return text
    for secret in sorted(_secrets(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
