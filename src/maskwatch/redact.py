"""Credentials out of everything MaskWatch stores, prints or serves.

``rtsp://user:secret@cam/stream`` becomes ``rtsp://user:***@cam/stream``; a URL with a user and no
password keeps the user. Query parameters named like secrets (``password``, ``token``, ``key``...)
are masked too. Text that holds no URL comes back unchanged.
"""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^/@:\s]*):(?P<password>[^/@\s]*)@")
_SECRET_PARAM = re.compile(r"(?P<name>[?&;](?:password|passwd|pwd|pass|token|secret|api[_-]?key|key|auth)=)[^&;#\s]*",
                           re.IGNORECASE)
MASK = "***"


def redact(text: str | None) -> str | None:
    """``text`` with URL passwords and secret query values replaced by ``***``."""
    if not text or ("://" not in text and "=" not in text):
        return text
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    return _SECRET_PARAM.sub(lambda m: f"{m['name']}{MASK}", text)
