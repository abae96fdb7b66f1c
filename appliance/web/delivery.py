"""How answers travel: a page's fingerprint (ETag) so that an unchanged page costs a
304 of a few hundred bytes, gzip for HTML, JSON and text, and long cache
lifetimes for static files named by their content's hash (`static_url`).
"""

from __future__ import annotations

import gzip
import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from flask import Flask, Response, g, request, url_for

COMPRESSED_TYPES = ("text/html", "application/json", "text/plain", "text/css", "text/javascript",
                    "application/javascript", "image/svg+xml")
COMPRESS_FROM = 500  # bytes: smaller answers gain less than gzip's own header costs
STATIC_MAX_AGE = 365 * 24 * 3600
STATIC_FOLDER = Path(__file__).with_name("static")


def install(app: Flask) -> None:
    app.add_template_global(static_url)
    app.after_request(_cache_static)
    app.after_request(_compress)


@lru_cache(maxsize=64)
def _content_hash(filename: str) -> str:
    return hashlib.sha256((STATIC_FOLDER / filename).read_bytes()).hexdigest()[:12]


def static_url(filename: str) -> str:
    """A static file's address with its content's hash: cacheable for a year, and a
    new version is a new address."""
    return url_for("static", filename=filename, v=_content_hash(filename))


def _cache_static(response: Response) -> Response:
    if request.path.startswith("/static/") and request.args.get("v") and response.status_code == 200:
        response.cache_control.public = True
        response.cache_control.max_age = STATIC_MAX_AGE
        response.cache_control.immutable = True
    return response


def _compress(response: Response) -> Response:
    if (response.status_code != 200 or response.direct_passthrough or response.is_streamed
            or "gzip" not in request.headers.get("Accept-Encoding", "")
            or response.mimetype not in COMPRESSED_TYPES or "Content-Encoding" in response.headers):
        return response
    body = response.get_data()
    response.vary.add("Accept-Encoding")
    if len(body) < COMPRESS_FROM:
        return response
    response.set_data(gzip.compress(body, compresslevel=6, mtime=0))
    response.headers["Content-Encoding"] = "gzip"
    return response


def fingerprinted(fingerprint: Callable[[], Any], build: Callable[[], Response]) -> Response:
    """`build()`'s answer with an ETag made of `fingerprint()` (something small that changes
    whenever the answer would), or a bodiless 304 when the client already has it."""
    tag = hashlib.sha256(repr((fingerprint(), request.full_path)).encode())
    etag = tag.hexdigest()[:20]
    if request.if_none_match.contains_weak(etag):
        response = Response(status=304)
    else:
        g.page_etag = f'W/"{etag}"'  # the page carries it, so its first refresh can already be a 304
        response = build()
    if response.status_code in (200, 304):
        response.set_etag(etag, weak=True)
        response.cache_control.no_cache = True  # always ask; the ETag makes asking cheap
    return response
