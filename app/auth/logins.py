"""Password logins with throttling, stored in the database so every worker sees them.

``LIMIT_ACCOUNT`` failures for one account name (known or not) or ``LIMIT_ADDRESS`` from one
client address within ``WINDOW`` lock that account or address for ``LOCKOUT``; a locked
login is refused with 429 before any password is checked. Every check costs exactly one
scrypt run: an unknown or inactive user (or one without a password) is checked against a
fixed dummy hash. Failures and lockouts are logged here and returned in ``LoginResult.audit``
for the login view to write through the audit service (the services layer sits above this
one); never with the password, and an unknown name is kept as unknown (it may be a mistyped
password).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select
from werkzeug.security import check_password_hash

from app import db
from app.models import LoginFailure, LoginLockout, User, utcnow

log = logging.getLogger("app.auth")

WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)
LIMIT_ACCOUNT = 5
LIMIT_ADDRESS = 20
#: failures and lockouts older than this are pruned
KEEP = timedelta(days=1)
#: scrypt (werkzeug's default parameters) of a random password nobody knows
DUMMY_HASH = ("scrypt:32768:8:1$Gh77CCnZaeL9kfMK$77c4a6e42f7856cc86bdc0a5201485a8d698b8d167"
              "bebebdff806858cc6ea849f0d07043e84841bccb27a2305a51e1c2622b6317e838d1527ab49f8f"
              "8136c090")
WRONG = "Unknown user or wrong password."


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    status: int = 200  # 401 wrong, 429 locked
    message: str | None = None
    user_id: int | None = None
    #: audit rows to write: (status, detail) with detail {"event", "account", "client"}
    audit: tuple[tuple[int, dict], ...] = ()


def locked_message(minutes: int) -> str:
    unit = "minute" if minutes == 1 else "minutes"
    return (f"Too many failed attempts; try again in {minutes} {unit} "
            "or ask an administrator.")


def _event(status: int, event: str, account: str | None, client: str) -> tuple[int, dict]:
    return status, {"event": event, "account": account, "client": client}


def _locked_until(s, account: str, client: str):
    return s.scalar(select(func.max(LoginLockout.until)).where(
        ((LoginLockout.scope == "account") & (LoginLockout.key == account))
        | ((LoginLockout.scope == "address") & (LoginLockout.key == client)),
        LoginLockout.until > utcnow()))


def _failures_since_lock(s, scope: str, key: str, column, now) -> int:
    """Failures in the window that came after the key's last lockout ended."""
    last = s.scalar(select(func.max(LoginLockout.until)).where(
        LoginLockout.scope == scope, LoginLockout.key == key))
    since = now - WINDOW if last is None else max(now - WINDOW, last)
    return s.scalar(select(func.count()).select_from(LoginFailure).where(
        column == key, LoginFailure.time > since)) or 0


def _minutes_left(until, now) -> int:
    return max(1, math.ceil((until - now).total_seconds() / 60))


def check_login(name: str, password: str, client_addr: str | None) -> LoginResult:
    """Check a login attempt, throttled; audits and logs failures and lockouts."""
    account = name[:64]
    client = (client_addr or "unknown")[:64]
    with db.new_session() as s:
        now = utcnow()
        until = _locked_until(s, account, client)
        user = s.scalar(select(User).where(User.name == account, User.active.is_(True)))
        known = account if user is not None else None
        if until is not None:
            log.warning("login refused: locked", extra={"account": known or "(unknown)",
                                                        "client": client})
            return LoginResult(False, 429, locked_message(_minutes_left(until, now)),
                               audit=(_event(429, "login-refused-locked", known, client),))
        stored = user.password_hash if user is not None and user.password_hash else None
        ok = check_password_hash(stored or DUMMY_HASH, password) and stored is not None
        if ok:
            s.execute(delete(LoginFailure).where(LoginFailure.account == account))
            s.commit()
            return LoginResult(True, user_id=user.id)
        s.add(LoginFailure(time=now, account=account, client_addr=client))
        s.execute(delete(LoginFailure).where(LoginFailure.time < now - KEEP))
        s.execute(delete(LoginLockout).where(LoginLockout.until < now - KEEP))
        s.flush()
        events = [_event(401, "login-failed", known, client)]
        log.warning("login failed", extra={"account": known or "(unknown)", "client": client})
        locks = []
        if _failures_since_lock(s, "account", account, LoginFailure.account,
                                now) >= LIMIT_ACCOUNT:
            locks.append(("account", account))
        if _failures_since_lock(s, "address", client, LoginFailure.client_addr,
                                now) >= LIMIT_ADDRESS:
            locks.append(("address", client))
        for scope, key in locks:
            s.add(LoginLockout(scope=scope, key=key, created_at=now, until=now + LOCKOUT))
            events.append(_event(429, f"login-lockout-{scope}", known, client))
            log.warning("login lockout", extra={"scope": scope, "client": client,
                                                "account": known or "(unknown)"})
        s.commit()
        if locks:
            return LoginResult(False, 429, locked_message(_minutes_left(now + LOCKOUT, now)),
                               audit=tuple(events))
        return LoginResult(False, 401, WRONG, audit=tuple(events))
