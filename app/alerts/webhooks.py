"""Outbound webhooks: every alert transition POSTed, signed, to each subscribed endpoint.

Subscriptions are rows of ``webhook_subscriptions`` (``flask alerts add-webhook URL``); the
secret signs the bodies, so it is stored as given (a hash could not sign). Each transition
queues one ``webhook_deliveries`` row per matching subscription in the transition's own
transaction (nothing is lost if the process dies); the delivery log keeps the attempts, the
last status code or error and the next retry.

The request: ``POST`` with a JSON body ``{"id", "type": "alert.raised|alert.acknowledged|
alert.resolved|alert.escalated", "time", "alert": {...}}``, headers ``Content-Type:
application/json``, ``X-Signature: sha256=<hex HMAC-SHA256 of the raw body with the secret>``,
``X-Alert-Event`` (the type) and ``X-Delivery-Id`` (the body's id: deliveries are at least
once, receivers drop repeats by it). A 2xx answer is delivered; anything else (or no answer
within ``ALERT_WEBHOOK_TIMEOUT_S``) is retried after ``ALERT_WEBHOOK_BACKOFF_S * 2**(n-1)``
seconds (capped at an hour) up to ``ALERT_WEBHOOK_MAX_ATTEMPTS`` attempts, then ``failed``.

Delivery runs in a background thread per worker process, woken after each transition (the
request never waits for it), and from ``flask alerts deliver`` (cron, or after a restart).
A row is claimed by moving its ``next_attempt_at`` forward in one conditional UPDATE, so two
workers never send the same attempt.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta

from flask import Flask, current_app, request
from sqlalchemy import func, select, update

from app import db
from app.models import WebhookDelivery, WebhookSubscription, utcnow

log = logging.getLogger("app.alerts.webhooks")
EVENT_TYPES = ("alert.raised", "alert.acknowledged", "alert.resolved", "alert.escalated")
#: Flask config keys (not environment variables) and their defaults
CONFIG = {"ALERT_WEBHOOK_BACKOFF_S": 30.0, "ALERT_WEBHOOK_MAX_ATTEMPTS": 8,
          "ALERT_WEBHOOK_TIMEOUT_S": 5.0, "ALERT_WEBHOOK_BACKGROUND": True}
MAX_BACKOFF_S = 3600.0
#: a claimed attempt may take this long before another worker may retry it
LEASE = timedelta(minutes=2)


def sign(secret: str, body: bytes) -> str:
    """The ``X-Signature`` header value of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _wants(sub: WebhookSubscription, event: str) -> bool:
    events = {e.strip() for e in (sub.events or "*").split(",")}
    return "*" in events or event in events


def enqueue(s, event: str, alert: dict, now: datetime) -> int:
    """Queue ``event`` for every active subscription wanting it (caller commits)."""
    n = 0
    for sub in s.scalars(select(WebhookSubscription).where(WebhookSubscription.active.is_(True))):
        if not _wants(sub, event):
            continue
        body = json.dumps({"id": uuid.uuid4().hex, "type": event, "time": now.isoformat(),
                           "alert": alert}, separators=(",", ":"))
        s.add(WebhookDelivery(subscription_id=sub.id, event=event, alert_id=alert.get("id"),
                              body=body, status="pending", attempts=0, next_attempt_at=now,
                              created_at=now))
        n += 1
    return n


def add_subscription(url: str, secret: str, events: str = "*") -> int:
    """A new subscription; returns its id."""
    if not url.startswith(("http://", "https://")):
        raise ValueError("url: must start with http:// or https://")
    wanted = [e.strip() for e in events.split(",") if e.strip()]
    bad = [e for e in wanted if e != "*" and e not in EVENT_TYPES]
    if bad or not wanted:
        raise ValueError(f"events: use * or some of {', '.join(EVENT_TYPES)}; got {events!r}")
    if len(secret) < 16:
        raise ValueError("secret: at least 16 characters")
    with db.new_session() as s:
        sub = WebhookSubscription(url=url, secret=secret, events=",".join(wanted), active=True)
        s.add(sub)
        s.commit()
        return sub.id


def subscriptions() -> list[tuple[int, str, str, bool, dict[str, int]]]:
    """(id, url, events, active, deliveries by status) of every subscription."""
    with db.new_session() as s:
        counts: dict[int, dict[str, int]] = {}
        for sub_id, status, n in s.execute(
                select(WebhookDelivery.subscription_id, WebhookDelivery.status, func.count())
                .group_by(WebhookDelivery.subscription_id, WebhookDelivery.status)):
            counts.setdefault(sub_id, {})[status] = n
        return [(sub.id, sub.url, sub.events, sub.active, counts.get(sub.id, {}))
                for sub in s.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id))]


def recent_deliveries(limit: int = 20) -> list[WebhookDelivery]:
    """The delivery log, newest first."""
    with db.new_session() as s:
        return list(s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id.desc())
                              .limit(limit)))


def deactivate(subscription_id: int) -> bool:
    """Stop sending to a subscription; False if there is none."""
    with db.new_session() as s:
        sub = s.get(WebhookSubscription, subscription_id)
        if sub is None:
            return False
        sub.active = False
        s.commit()
        return True


def _cfg(key: str):
    return current_app.config.get(key, CONFIG[key])


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=float(_cfg("ALERT_WEBHOOK_TIMEOUT_S"))) as r:
            return r.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, str(getattr(exc, "reason", exc))[:500]


def _claim(s, d: WebhookDelivery, now: datetime) -> bool:
    res = s.execute(update(WebhookDelivery)
                    .where(WebhookDelivery.id == d.id, WebhookDelivery.status == "pending",
                           WebhookDelivery.next_attempt_at == d.next_attempt_at)
                    .values(next_attempt_at=now + LEASE)
                    .execution_options(synchronize_session=False))
    s.commit()
    return res.rowcount == 1


def deliver_due(now: datetime | None = None, limit: int = 100) -> dict[str, int]:
    """Attempt every pending delivery due at ``now``; counts of delivered/retry/failed."""
    now = now or utcnow()
    counts = {"delivered": 0, "retry": 0, "failed": 0}
    with db.new_session() as s:
        due = s.scalars(select(WebhookDelivery)
                        .where(WebhookDelivery.status == "pending",
                               WebhookDelivery.next_attempt_at <= now)
                        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                        .limit(limit)).all()
        for d in due:
            sub = s.get(WebhookSubscription, d.subscription_id)
            if not _claim(s, d, now):
                continue
            if sub is None or not sub.active:
                d.status, d.last_error = "failed", "subscription removed or inactive"
                s.commit()
                counts["failed"] += 1
                continue
            body = d.body.encode()
            code, error = _post(sub.url, body, {
                "Content-Type": "application/json", "X-Signature": sign(sub.secret, body),
                "X-Alert-Event": d.event, "X-Delivery-Id": json.loads(d.body)["id"],
                "User-Agent": "ras-twin-webhooks/1"})
            d.attempts += 1
            d.last_status_code, d.last_error = code, error
            if code is not None and 200 <= code < 300:
                d.status, d.delivered_at, d.next_attempt_at = "delivered", utcnow(), None
                counts["delivered"] += 1
            elif d.attempts >= int(_cfg("ALERT_WEBHOOK_MAX_ATTEMPTS")):
                d.status, d.next_attempt_at = "failed", None
                counts["failed"] += 1
            else:
                wait = min(MAX_BACKOFF_S,
                           float(_cfg("ALERT_WEBHOOK_BACKOFF_S")) * 2 ** (d.attempts - 1))
                d.next_attempt_at = now + timedelta(seconds=wait)
                counts["retry"] += 1
            s.commit()
    return counts


def next_due() -> datetime | None:
    """When the earliest pending delivery is due (None: nothing pending)."""
    with db.new_session() as s:
        return s.scalar(select(WebhookDelivery.next_attempt_at)
                        .where(WebhookDelivery.status == "pending")
                        .order_by(WebhookDelivery.next_attempt_at).limit(1))


class Deliverer:
    """One background thread per worker process (made lazily: threads do not survive a fork),
    woken by :func:`kick`, sleeping until the next retry is due (rechecking every ``IDLE_S``
    while some are pending; with nothing pending it only waits to be woken). The first
    request a process serves looks once for deliveries left pending (a restart) and starts
    the thread if there are any."""

    IDLE_S = 60.0

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.wake = threading.Event()
        self.lock = threading.Lock()
        self.pid = 0
        self.checked_pid = 0

    def kick(self) -> None:
        with self.lock:
            if self.pid != os.getpid():
                self.pid = os.getpid()
                threading.Thread(target=self._loop, daemon=True, name="webhooks").start()
        self.wake.set()

    def resume(self) -> None:
        """Once per process: start delivering if deliveries are pending."""
        if self.checked_pid == os.getpid():
            return
        self.checked_pid = os.getpid()
        try:
            if next_due() is not None:
                self.kick()
        except Exception:  # tables not there yet (before init-db): nothing to resume
            log.info("webhook deliveries not checked")

    def _loop(self) -> None:
        wait: float | None = 0.0
        while True:
            self.wake.wait(wait)
            self.wake.clear()
            wait = self.IDLE_S
            with self.app.app_context():
                try:
                    deliver_due()
                    due = next_due()
                    wait = None if due is None else max(
                        0.05, min(self.IDLE_S, (due - utcnow()).total_seconds()))
                except Exception:  # the database may be away; try again later
                    log.exception("webhook delivery failed")


def kick() -> None:
    """Wake this process's delivery thread (after a transition was committed)."""
    d: Deliverer | None = current_app.extensions.get("alert_webhooks")
    if d is not None:
        d.kick()


#: blueprints whose requests use the database anyway (never the health checks: /healthz
#: must answer at once even when the database does not)
RESUME_ON = frozenset({"api", "alerts", "web"})


def resume() -> None:
    """``before_request``: resume pending deliveries once per process (see Deliverer)."""
    d: Deliverer | None = current_app.extensions.get("alert_webhooks")
    if d is not None and request.blueprint in RESUME_ON:
        d.resume()


def init_app(app: Flask) -> None:
    """Defaults of the webhook settings; the background deliverer unless disabled."""
    for key, value in CONFIG.items():
        app.config.setdefault(key, value)
    if app.config["ALERT_WEBHOOK_BACKGROUND"]:
        app.extensions["alert_webhooks"] = Deliverer(app)
        app.before_request(resume)
