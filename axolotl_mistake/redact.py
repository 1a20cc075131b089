"""Credentials pasted into URLs, removed before a URL is written anywhere.

API keys come from the environment and are never recorded, but users also put secrets in URLs:
a proxy's `https://user:token@host/v1`, a presigned data URL's `?X-Amz-Signature=...`. Every
config a manifest, card or results file records passes through `redact_urls` first, so the
output still says which endpoint or file was used, without what unlocks it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
SECRET_QUERY_KEY = re.compile(
    r"token|key|secret|sig|password|passwd|auth|credential|session|policy", re.IGNORECASE
)
"""Query parameters whose value is masked (`api-key`, `access_token`, `X-Amz-Signature`,
`X-Amz-Credential`, `sig`, `Policy`, ...); other parameters (`download=true`) are kept."""
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://\S+$")


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
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _mask_param(param: str) -> str:
    name, eq, _ = param.partition("=")
    return f"{name}={MASK}" if eq and SECRET_QUERY_KEY.search(name) else param


def redact_urls(obj: Any) -> Any:
    """A copy of a JSON-like value (dicts, lists, strings) with every URL string redacted."""
    if isinstance(obj, str):
        return redact_url(obj)
    if isinstance(obj, dict):
        return {key: redact_urls(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [redact_urls(value) for value in obj]
    return obj
