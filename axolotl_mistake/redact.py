"""Credentials pasted into URLs, removed before a URL is written anywhere.

API keys come from the environment and are never recorded, but users also put secrets in URLs:
a proxy's `https://user:token@host/v1`, a presigned data URL's `?X-Amz-Signature=...`. Every
config a manifest, card or results file records passes through `redact_urls` first, and every
InputError message through `redact_text`, so the output still says which endpoint or file was
used, without what unlocks it.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

MASK = "***"
SECRET_QUERY_KEY = re.compile(
    r"token|key|secret|sig|pass|pwd|jwt|bearer|auth|credential|session|policy", re.IGNORECASE
)
"""Query (and fragment) parameters whose value is masked (`api-key`, `access_token`,
`X-Amz-Signature`, `X-Amz-Credential`, `sig`, `Policy`, `pwd`, ...); other parameters
(`download=true`) are kept."""
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://\S+$")
_URL_IN_TEXT = re.compile(
    r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>()\[\]{}`]+?(?=[,.;:!?]*(?:[\s'\"<>()\[\]{}`]|$))"
)
"""A URL inside free text, up to a space, quote or bracket (how messages quote URLs), without
the punctuation that ends a sentence or a list item."""
_PATH_QUERY_IN_TEXT = re.compile(
    r"(?<![\w:/.\]])(/[^\s?#'\"<>]*)\?([^\s'\"<>#]+?)(?=[,.;:!?]*(?:[\s'\"<>()\[\]{}`]|$))"
)
"""A path with a query and no scheme or host (`/v1/models?api-key=...`), as an HTTP server's
access log writes the request target; not the path of a full URL (`_URL_IN_TEXT` has it)."""


def redact_url(text: str) -> str:
    """`text` with a URL's user info and secret query values masked; anything that is not a
    single URL is returned unchanged."""
    if not _URL.match(text):
        return text
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. an invalid IPv6 host: not a URL we could have used
        return text
    netloc = parts.netloc
    if "@" in netloc:  # the whole user info: a lone user name is often the token itself
        netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
    query = "&".join(_mask_param(p) for p in parts.query.split("&")) if parts.query else ""
    # an OAuth-style fragment (`#access_token=...`) carries secrets the same way
    fragment = "&".join(_mask_param(p) for p in parts.fragment.split("&"))
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def redact_text(text: str) -> str:
    """`text` with every URL in it redacted: libraries quote the URL they failed on in their
    error messages, which this project prints and records. A request target without scheme
    and host (`/v1/models?api-key=...`, a server's access log) gets its secret query values
    masked the same way."""
    text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
    return _PATH_QUERY_IN_TEXT.sub(
        lambda m: f"{m.group(1)}?{'&'.join(_mask_param(p) for p in m.group(2).split('&'))}", text
    )


def _mask_param(param: str) -> str:
    name, eq, _ = param.partition("=")
    return f"{name}={MASK}" if eq and SECRET_QUERY_KEY.search(name) else param


def secret_forms(secret: str) -> list[str]:
    """`secret` as written and in the encodings a server may echo it back in: percent-encoded
    (a key quoted into an error's URL, with or without its `/` kept), form-encoded (`+` for a
    space), and JSON-escaped, with `/` escaped too as PHP's `json_encode` does. A base64-style
    key (`/`, `+`, `=`) differs in each, and an error quotes the raw body. Longest first, so
    that replacing one form never leaves part of a longer one."""
    escaped = json.dumps(secret, ensure_ascii=False)[1:-1]
    forms = {secret, escaped, escaped.replace("/", "\\/")}
    for safe in ("", "/"):
        forms |= {quote(secret, safe=safe), quote_plus(secret, safe=safe)}
    return sorted(forms, key=len, reverse=True)


def redact_urls(obj: Any) -> Any:
    """A copy of a JSON-like value (dicts, lists, strings) with every URL string redacted."""
    if isinstance(obj, str):
        return redact_url(obj)
    if isinstance(obj, dict):
        return {key: redact_urls(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [redact_urls(value) for value in obj]
    return obj


class RedactingFilter(logging.Filter):
    """Rewrites a log record's message with its URLs redacted, before any handler sees it.

    httpx logs every request's full URL at INFO ("HTTP Request: POST http://user:pw@host/v1/…"),
    so a host application that logs at INFO (a notebook, a Slurm job's logging setup) printed a
    base_url's password on every call; uvicorn's access log (`serve --verbose`) writes each
    request's path and query, where a client may have put its key.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format: logging reports it when a handler formats the record
            return True
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def redact_logger(name: str) -> None:
    """Put a `RedactingFilter` on logger `name` (once: loggers live as long as the process)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
