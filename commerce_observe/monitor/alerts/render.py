"""One notification, four renderings: plain text, HTML, Slack blocks, generic JSON.

All four are built from the same lines so an e-mail, a Slack message and a
webhook payload never disagree about what, where, since when and how bad.
Long groups are cut (``MAX_LISTED``) with a "+N more" line: receivers have size
limits (a Slack section holds 3,000 characters, a message 50 blocks) and a page
listing 400 products is read by nobody.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .model import Alert, Kind, Notification, Status

MAX_LISTED = 20
_SLACK_SECTION = 2900  # below Slack's 3,000-character limit for a section's text


def _ts(dt: datetime | None) -> str:
    return dt.strftime("%Y-%m-%d %H:%M %Z").strip() if dt else "?"


def alert_lines(a: Alert) -> list[str]:
    """The five answers of one alert, one per line."""
    lines = [
        f"{a.severity.upper()} {a.title} - {a.where_text()}",
        f"  since {_ts(a.since)}" + (f", resolved {_ts(a.ended)}" if a.status is Status.RESOLVED else ""),
        f"  {a.measure}",
    ]
    lines += [f"  {d}" for d in a.details[:MAX_LISTED]]
    if len(a.details) > MAX_LISTED:
        lines.append(f"  +{len(a.details) - MAX_LISTED} more")
    lines += [f"  {label}: {url}" for label, url in a.links]
    return lines


def subject(n: Notification) -> str:
    if n.kind is Kind.SUMMARY:
        return f"[commerce-observe] {n.title}"
    state = "RESOLVED" if n.kind in (Kind.RESOLVED, Kind.GROUP_RESOLVED) else n.worst.upper()
    return f"[commerce-observe {state}] {n.title}"


def text(n: Notification) -> str:
    out = [subject(n), ""]
    if len(n.alerts) > 1:  # a group or summary: one line per alert, so 40 products fit on a screen
        out.append(f"since {_ts(min(a.since for a in n.alerts))}")
        for a in n.alerts[:MAX_LISTED]:
            state = " (resolved)" if a.status is Status.RESOLVED and n.kind is Kind.SUMMARY else ""
            out.append(f"- {a.severity} {a.title}{state}: {a.where_text()}: {a.measure}")
            out += [f"    {label}: {url}" for label, url in a.links[:2]]
    else:
        out += alert_lines(n.alerts[0]) if n.alerts else []
    if len(n.alerts) > MAX_LISTED:
        out.append(f"+{len(n.alerts) - MAX_LISTED} more alerts")
    if n.suppressed:
        out.append(f"({n.suppressed} notifications were held back by the rate limit and are summarised here)")
    out += ["", f"notification {n.id} at {_ts(n.at)}"]
    return "\n".join(out) + "\n"


def html_body(n: Notification) -> str:
    rows = []
    for a in n.alerts[:MAX_LISTED]:
        links = "<br>".join(f'<a href="{html.escape(u)}">{html.escape(label)}</a>' for label, u in a.links)
        details = "<br>".join(html.escape(d) for d in a.details[:MAX_LISTED])
        rows.append(
            "<tr>" + "".join(f"<td>{c}</td>" for c in (
                html.escape(a.severity), html.escape(a.title), html.escape(a.where_text()), html.escape(_ts(a.since)),
                html.escape(a.measure) + (f"<br>{details}" if details else ""), links)) + "</tr>"
        )
    more = f"<p>+{len(n.alerts) - MAX_LISTED} more alerts</p>" if len(n.alerts) > MAX_LISTED else ""
    held = f"<p>{n.suppressed} notifications were held back by the rate limit.</p>" if n.suppressed else ""
    return (
        f"<html><body><h2>{html.escape(subject(n))}</h2>"
        "<table border=\"1\" cellpadding=\"4\"><tr><th>severity</th><th>what</th><th>where</th><th>since</th>"
        f"<th>how bad</th><th>traces</th></tr>{''.join(rows)}</table>{more}{held}"
        f"<p><small>notification {html.escape(n.id)}</small></p></body></html>"
    )


def slack(n: Notification) -> dict[str, Any]:
    """Slack incoming-webhook body: ``text`` is the fallback for notifications, ``blocks`` the layout."""
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": subject(n)[:150]}}]
    for a in n.alerts[:MAX_LISTED]:
        lines = [f"*{a.title}* - {a.where_text()}", f"since {_ts(a.since)} - {a.measure}"]
        lines += [f"`{d}`" for d in a.details[:5]]
        lines += [f"<{url}|{label}>" for label, url in a.links[:10]]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:_SLACK_SECTION]}})
    footer = f"notification {n.id}"
    if len(n.alerts) > MAX_LISTED:
        footer = f"+{len(n.alerts) - MAX_LISTED} more alerts - " + footer
    if n.suppressed:
        footer = f"{n.suppressed} notifications held back by the rate limit - " + footer
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]})
    return {"text": subject(n), "blocks": blocks}


def alert_dict(a: Alert) -> dict[str, Any]:
    return {
        "key": a.key, "rule": a.rule, "status": a.status.value, "title": a.title, "severity": a.severity,
        "where": dict(a.where), "since": a.since.isoformat(), "ended": a.ended.isoformat() if a.ended else None,
        "measure": a.measure, "value": a.value, "details": list(a.details),
        "links": [{"label": label, "url": url} for label, url in a.links],
    }


def payload(n: Notification) -> dict[str, Any]:
    """Generic webhook JSON: every alert in full, stable keys, ``id`` for receiver-side de-duplication."""
    return {
        "id": n.id, "kind": n.kind.value, "title": n.title, "severity": n.worst, "at": n.at.isoformat(),
        "suppressed": n.suppressed, "alerts": [alert_dict(a) for a in n.alerts],
    }


def alert_from_dict(a: Mapping[str, Any]) -> Alert:
    """The inverse of :func:`alert_dict`."""
    return Alert(key=a["key"], rule=a["rule"], title=a["title"], severity=a["severity"],
                 where=tuple((str(k), str(v)) for k, v in a["where"].items()), since=datetime.fromisoformat(a["since"]),
                 measure=a["measure"], value=float(a["value"]),
                 links=tuple((x["label"], x["url"]) for x in a.get("links", ())), details=tuple(a.get("details", ())),
                 status=Status(a["status"]), ended=datetime.fromisoformat(a["ended"]) if a.get("ended") else None)


def from_payload(d: Mapping[str, Any]) -> Notification:
    """The inverse of :func:`payload`: the same notification, with the same id (a member of a
    ``watch --scale-out`` group finishes the delivery another one registered and did not end)."""
    return Notification(Kind(d["kind"]), str(d["title"]), tuple(alert_from_dict(a) for a in d["alerts"]),
                        datetime.fromisoformat(d["at"]), int(d.get("suppressed", 0)), id=str(d["id"]))
