"""Credentials in URLs (``scheme://user:pass@host``) hidden wherever a URL is shown.

Shared by the configuration's ``repr``, the CLI's messages and the privacy masker,
which sit on both sides of the agent/monitor line, hence here. The user name is
hidden too: in ``https://4111111111111111:x@psp`` or ``amqp://alice@example.com:pw@``
it may be the sensitive part. A URL without credentials comes back as the same object.
"""

from __future__ import annotations

import re
from typing import Final

CREDENTIALS: Final = "[CREDENTIALS]@"

#: ``//`` then a user-info part containing a ``:`` up to the authority's last ``@``
#: (what follows it up to ``/``, ``?``, ``#`` or a space holds no ``@``).
_USERINFO_RE: Final = re.compile(r"(?<=//)[^/\s?#]*:[^/\s?#]*@(?=[^/\s?#@]*(?:[/\s?#]|$))")


def redact_credentials(text: str) -> str:
    """``http://user:pass@host/x`` → ``http://[CREDENTIALS]@host/x``; other text unchanged (same object)."""
    if "@" not in text or "//" not in text:
        return text
    return _USERINFO_RE.sub(CREDENTIALS, text)
