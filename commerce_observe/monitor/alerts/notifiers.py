"""Where notifications go: a generic JSON webhook, a Slack-compatible webhook, e-mail.

A notifier does one blocking delivery attempt and raises :class:`DeliveryError`
when it fails; retrying, backoff and throttling belong to the
:class:`~commerce_observe.monitor.alerts.delivery.Dispatcher`, which calls notifiers
from its own thread so a slow or dead receiver never holds up detection.

``DeliveryError.permanent`` separates "try again later" (connection refused,
timeouts, HTTP 5xx, 408, 429, SMTP 4xx) from "retrying cannot help" (HTTP 4xx,
SMTP 5xx such as an unknown recipient): the latter is given up at once and counted.
Only the standard library is used (``urllib``, ``smtplib``, ``email``).
"""

from __future__ import annotations

import json
import smtplib
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol

from . import render
from .model import Notification


class DeliveryError(Exception):
    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Notifier(Protocol):
    name: str

    def send(self, n: Notification) -> None:
        """Deliver once or raise :class:`DeliveryError`."""


def _post_json(url: str, body: Mapping[str, Any], timeout_s: float, headers: Mapping[str, str]) -> None:
    data = json.dumps(body, separators=(",", ":")).encode()
    req = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - URL is configuration
            resp.read()
    except urllib.error.HTTPError as exc:
        retry = exc.code >= 500 or exc.code in (408, 429)
        raise DeliveryError(f"HTTP {exc.code} from {url}", permanent=not retry) from None
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(f"cannot reach {url}: {exc}") from None


class WebhookNotifier:
    """POSTs :func:`render.payload` as JSON (Alertmanager-style receivers, n8n, custom services)."""

    def __init__(self, url: str, *, name: str = "webhook", timeout_s: float = 10.0, headers: Mapping[str, str] | None = None) -> None:
        self.url = url
        self.name = name
        self.timeout_s = timeout_s
        self.headers = dict(headers or {})

    def send(self, n: Notification) -> None:
        _post_json(self.url, render.payload(n), self.timeout_s, self.headers)


class SlackNotifier:
    """POSTs ``{"text": ..., "blocks": [...]}`` (Slack incoming webhooks, Mattermost, Rocket.Chat)."""

    def __init__(self, url: str, *, name: str = "slack", timeout_s: float = 10.0) -> None:
        self.url = url
        self.name = name
        self.timeout_s = timeout_s

    def send(self, n: Notification) -> None:
        _post_json(self.url, render.slack(n), self.timeout_s, {})


class EmailNotifier:
    """Plain text + HTML alternative over SMTP, optionally STARTTLS and login."""

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients: Sequence[str],
        *,
        name: str = "email",
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 15.0,
    ) -> None:
        if not recipients:
            raise ValueError("an e-mail notifier needs at least one recipient")
        self.host, self.port, self.sender, self.recipients = host, port, sender, list(recipients)
        self.name = name
        self.starttls, self.username, self.password = starttls, username, password
        self.timeout_s = timeout_s

    def message(self, n: Notification) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = render.subject(n)
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = formatdate(n.at.timestamp(), localtime=False)
        msg["Message-ID"] = make_msgid(idstring=n.id, domain="commerce-observe")
        msg["X-Commerce-Observe-Notification"] = n.id
        msg.set_content(render.text(n))
        msg.add_alternative(render.html_body(n), subtype="html")
        return msg

    def send(self, n: Notification) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password or "")
                refused = smtp.send_message(self.message(n))
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"SMTP {exc.smtp_code} from {self.host}:{self.port}", permanent=exc.smtp_code >= 500) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"all recipients refused: {sorted(exc.recipients)}", permanent=True) from None
        except (smtplib.SMTPException, socket.timeout, OSError) as exc:
            raise DeliveryError(f"cannot deliver via {self.host}:{self.port}: {exc!r}") from None
        if refused:  # some recipients took it: not retried (the others would get it twice)
            raise DeliveryError(f"recipients refused: {sorted(refused)}", permanent=True)
