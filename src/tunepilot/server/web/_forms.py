"""Form bodies for the dashboard's POST routes.

The forms are URL-encoded and small, so they are parsed here rather than with a
multipart library. Where a form may come from (its origin and form token) is
checked before any route runs, by the gate (:mod:`tunepilot.server.web._csrf`).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs

from fastapi import Depends, HTTPException, Request

from tunepilot.server._guard import BodyTooLarge


async def form_body(request: Request) -> dict[str, str]:
    """The request's URL-encoded form fields (the last value of repeated ones)."""
    body = await request.body()
    kind = request.headers.get("content-type", "")
    if body and not kind.startswith("application/x-www-form-urlencoded"):
        raise HTTPException(415, "send the form as application/x-www-form-urlencoded")
    limit: int = request.app.state.tunepilot.settings.max_form_bytes
    if len(body) > limit:
        raise BodyTooLarge(limit, "TUNEPILOT_MAX_FORM_BYTES")
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
