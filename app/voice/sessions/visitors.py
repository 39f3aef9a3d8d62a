"""Who is asking: the visitor key that owns sessions and identities.

An anonymous visitor is a random key kept in their Django session, which lives in a signed,
HttpOnly cookie (settings: SESSION_*); it is given by the first HTTP answer to a request
without one (app.voice.http.visitors). Where Django auth signs people in, the signed-in
user is the visitor. The transcript socket reads the same session and user from its scope.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from django.contrib.sessions.backends.base import SessionBase

SESSION_KEY = "visitor"
ANONYMOUS_PREFIX = "anon:"
USER_PREFIX = "user:"
_ANONYMOUS = re.compile(r"anon:[A-Za-z0-9_-]{32}")


def visitor_key(session: SessionBase | None, user: Any = None) -> str | None:
    """The visitor of a request or socket: the signed-in user, else the session's key;
    None when there is neither (no cookie, or one this server did not sign)."""
    if user is not None and getattr(user, "is_authenticated", False):
        return f"{USER_PREFIX}{user.pk}"
    key = session.get(SESSION_KEY) if session is not None else None
    return key if isinstance(key, str) and _ANONYMOUS.fullmatch(key) else None


def new_visitor(session: SessionBase) -> str:
    """Make the session a new anonymous visitor; the session middleware sends its cookie."""
    key = ANONYMOUS_PREFIX + secrets.token_urlsafe(24)  # 192 random bits, 32 characters
    session[SESSION_KEY] = key
    return key
