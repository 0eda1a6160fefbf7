"""Form bodies and the same-origin check for the dashboard's POST routes.

The forms are URL-encoded and small, so they are parsed here rather than with a
multipart library. A POST whose ``Origin`` names another site is refused; with the
``SameSite=Strict`` session cookie that closes cross-site request forgery.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs, urlsplit

from fastapi import Depends, HTTPException, Request

MAX_FORM_BYTES = 256 * 1024


async def form_body(request: Request) -> dict[str, str]:
    """The request's URL-encoded form fields (the last value of repeated ones)."""
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        here = urlsplit(str(request.base_url))
        there = urlsplit(origin)
        if (there.scheme, there.netloc) != (here.scheme, here.netloc):
            raise HTTPException(403, f"form posted from another origin ({origin})")
    body = await request.body()
    kind = request.headers.get("content-type", "")
    if body and not kind.startswith("application/x-www-form-urlencoded"):
        raise HTTPException(415, "send the form as application/x-www-form-urlencoded")
    if len(body) > MAX_FORM_BYTES:
        raise HTTPException(413, f"form larger than {MAX_FORM_BYTES // 1024} KiB")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50,
                          strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(400, f"unreadable form: {exc}") from None
    return {key: values[-1] for key, values in fields.items()}


FormDep = Annotated[dict[str, str], Depends(form_body)]


def safe_next(target: str | None, default: str = "/ui/sweeps") -> str:
    """A redirect target only within the dashboard (never another host)."""
    if target and target.startswith("/ui") and not target.startswith("//") and "\\" not in target:
        return target
    return default
