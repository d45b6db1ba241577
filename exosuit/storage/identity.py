"""Users, teams, memberships and API tokens."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import bindparam, delete, update
from sqlalchemy import select as select_core
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from exosuit.domain.autonomy import AutonomyLevel, Role, can_approve
from exosuit.storage.db import Database, utcnow
from exosuit.storage.tables import ApiToken, Membership, Team, User, WebSession, table_of

_hasher = PasswordHasher()
_TOKEN, _USER, _MEMBERSHIP = table_of(ApiToken), table_of(User), table_of(Membership)
# A bearer token's principal: the token and its user, live, and a row per team membership.
_TOKEN_PRINCIPAL = (
    select_core(
        _TOKEN.c.id.label("token_id"),
        _TOKEN.c.name,
        _TOKEN.c.expires_at,
        _TOKEN.c.last_used_at,
        _USER.c.id.label("user_id"),
        _USER.c.email,
        _USER.c.auth_version,
        _MEMBERSHIP.c.team,
        _MEMBERSHIP.c.role,
    )
    .join(_USER, _USER.c.id == _TOKEN.c.user_id)
    .outerjoin(_MEMBERSHIP, _MEMBERSHIP.c.user_id == _USER.c.id)
    .where(
        _TOKEN.c.token_hash == bindparam("token_hash"),
        _TOKEN.c.revoked_at.is_(None),
        _USER.c.disabled_at.is_(None),
    )
)
# What a cached principal is checked against: the user's auth version, while enabled.
_USER_VERSION = select_core(_USER.c.auth_version).where(
    _USER.c.id == bindparam("user_id"), _USER.c.disabled_at.is_(None)
)
TOKEN_PREFIX = "exo_"
_TOUCH_EVERY = timedelta(minutes=5)
SESSION_LIFETIME = timedelta(hours=12)
_CACHED_TOKENS = 10_000  # per process; the oldest goes first


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user, their roles per team, and the token they used if any."""

    user_id: int
    email: str
    roles: dict[str, Role] = field(default_factory=dict)
    token_name: str | None = None

    @property
    def teams(self) -> list[str]:
        return sorted(self.roles)

    @property
    def approver_teams(self) -> list[str]:
        """The teams whose gates this person may decide."""
        return sorted(team for team, role in self.roles.items() if can_approve(role))

    @property
    def answer_only_teams(self) -> list[str]:
        """The teams where this person only answers questions (a member, not an approver)."""
        return sorted(team for team, role in self.roles.items() if not can_approve(role))

    def role_in(self, team: str) -> Role | None:
        return self.roles.get(team)


@dataclass
class SeenToken:
    """A bearer token's principal as this process last read it, and the user's auth version
    then: good for a request that finds the version unchanged (`Directory.confirm`)."""

    token_hash: str
    principal: Principal
    version: int
    token_id: int
    expires_at: datetime | None
    last_used_at: datetime | None

    def live(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


# A user's auth version while the user is enabled (NULL otherwise), for a statement that reads
# something a request needs anyway to carry (binds `user_id`): a cached principal confirmed at
# no extra query.
USER_VERSION = _USER_VERSION.scalar_subquery()


def hash_token(token: str) -> str:
    # Tokens are 256 random bits, so one SHA-256 is enough (no slow hash needed).
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@functools.cache
def _dummy_hash() -> str:
    """What an unknown account's password is checked against (hashed on first use: hashing
    takes most of a second of CPU, which every process would pay at import)."""
    return _hasher.hash("not a password anyone has")


def check_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except VerificationError:
        return False


class Directory:
    """Identity reads and writes, shared by the CLI, the API and `exosuit dev`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._seen: dict[str, SeenToken] = {}  # by token hash

    async def ensure_team(self, name: str) -> Team:
        async with self.db.session() as session:
            team = await session.get(Team, name)
            if team is None:
                team = Team(name=name)
                session.add(team)
                await session.commit()
            return team

    async def set_team_policy(
        self,
        name: str,
        *,
        max_autonomy: AutonomyLevel | None = None,
        gate_deadline_seconds: float | None = None,
        monthly_budget_usd: float | None = None,
        max_active_tasks: int | None = None,
        submissions_per_minute: int | None = None,
        model_wait_seconds: float | None = None,
        max_revisions: int | None = None,
        quorum_high: int | None = None,
    ) -> Team:
        """Change what is given; a monthly budget of 0 removes the budget."""
        await self.ensure_team(name)
        async with self.db.session() as session:
            team = await session.get(Team, name)
            assert team is not None
            if max_autonomy is not None:
                team.max_autonomy = max_autonomy.value
            if gate_deadline_seconds is not None:
                team.gate_deadline_seconds = gate_deadline_seconds
            if monthly_budget_usd is not None:
                team.monthly_budget_usd = monthly_budget_usd or None
            if max_active_tasks is not None:
                team.max_active_tasks = max_active_tasks
            if submissions_per_minute is not None:
                team.submissions_per_minute = submissions_per_minute
            if model_wait_seconds is not None:
                team.model_wait_seconds = model_wait_seconds
            if max_revisions is not None:
                team.max_revisions = max_revisions
            if quorum_high is not None:
                team.quorum_high = quorum_high
            session.add(team)
            await session.commit()
            return team

    async def team(self, name: str) -> Team | None:
        async with self.db.session() as session:
            return await session.get(Team, name)

    async def add_user(
        self, email: str, *, teams: list[str], role: Role, password: str | None = None
    ) -> User:
        """Create the user if missing and give them `role` in every team listed."""
        email = email.strip().lower()
        for name in teams:
            await self.ensure_team(name)
        async with self.db.session() as session:
            user = (await session.exec(select(User).where(User.email == email))).first()
            if user is None:
                user = User(email=email)
            if password is not None:
                user.password_hash = await asyncio.to_thread(hash_password, password)
            session.add(user)
            await session.flush()
            assert user.id is not None
            if password is not None:  # a new password ends every session signed in with the old one
                await _end_sessions(session, user.id)
            for name in teams:
                member = await session.get(Membership, (user.id, name))
                if member is None:
                    member = Membership(user_id=user.id, team=name, role=role.value)
                member.role = role.value
                session.add(member)
            await _bump(session, user.id)  # a role, a team or a password changed
            await session.commit()
            return user

    async def approvers_besides(self, team: str, email: str) -> int:
        """How many enabled people other than `email` may decide the team's gates."""
        roles = [Role.APPROVER.value, Role.ADMIN.value]
        query = (
            select(User.id)
            .join(Membership, col(Membership.user_id) == col(User.id))
            .where(Membership.team == team, col(Membership.role).in_(roles))
            .where(User.email != email.strip().lower(), col(User.disabled_at).is_(None))
        )
        async with self.db.session() as session:
            return len(list(await session.exec(query)))

    async def user_count(self) -> int:
        async with self.db.session() as session:
            return len(list(await session.exec(select(User.id))))

    async def create_token(
        self, email: str, name: str = "default", *, expires_days: float | None = None
    ) -> str:
        """A new API token for the user; only its hash is stored."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires = utcnow() + timedelta(days=expires_days) if expires_days is not None else None
        async with self.db.session() as session:
            _, user_id = await _user(session, email)
            session.add(
                ApiToken(user_id=user_id, name=name, token_hash=hash_token(token), expires_at=expires)
            )
            await session.commit()
        return token

    async def tokens(self, email: str) -> list[ApiToken]:
        """A user's tokens, oldest first (their hashes never leave the database)."""
        async with self.db.session() as session:
            _, user_id = await _user(session, email)
            rows = await session.exec(
                select(ApiToken).where(ApiToken.user_id == user_id).order_by(col(ApiToken.id))
            )
            return list(rows)

    async def revoke_token(self, email: str, name: str) -> int:
        """Revoke the user's live tokens of that name; how many were revoked."""
        async with self.db.session() as session:
            _, user_id = await _user(session, email)
            rows = await session.exec(
                select(ApiToken).where(
                    ApiToken.user_id == user_id, ApiToken.name == name, col(ApiToken.revoked_at).is_(None)
                )
            )
            revoked = 0
            for token in rows:
                token.revoked_at = utcnow()
                session.add(token)
                revoked += 1
            await _bump(session, user_id)
            await session.commit()
            return revoked

    async def disable_user(self, email: str) -> None:
        """The user's sessions end and their tokens stop working, at once."""
        async with self.db.session() as session:
            user, user_id = await _user(session, email)
            user.disabled_at = user.disabled_at or utcnow()
            session.add(user)
            await _end_sessions(session, user_id)
            await _bump(session, user_id)
            await session.commit()

    async def principal_for_token(self, token: str) -> Principal | None:
        """The live token's user with their roles. A token this process has seen costs one
        primary-key read (the user's auth version, bumped by every revocation, role, team or
        disable); an unseen one, or one whose user's version moved, one indexed read of the
        token, its user and their memberships. Either way a revoked token or a disabled user
        is refused by the very next request, on every replica."""
        seen = self.seen(token)
        if seen is not None:
            async with self.db.engine.connect() as connection:
                version = (
                    await connection.execute(_USER_VERSION, {"user_id": seen.principal.user_id})
                ).scalar()
            if await self.confirm(seen, version):
                return seen.principal
        return await self._read_token(hash_token(token))

    def seen(self, token: str) -> SeenToken | None:
        """The token's principal as this process last read it, if unexpired; NOT checked
        against the database: `confirm` it with the user's auth version before trusting it
        (or use it only where a wrong guess costs nothing, like counting whose request waits)."""
        seen = self._seen.get(hash_token(token))
        return seen if seen is not None and seen.live(utcnow()) else None

    async def confirm(self, seen: SeenToken, version: int | None) -> bool:
        """Whether the cached principal stands: its user's auth version, read by this request
        (None: the user is disabled or gone), is the one it was cached with. One that does not
        stand is forgotten; the caller reads the token again."""
        if version != seen.version:
            self._seen.pop(seen.token_hash, None)
            return False
        now = utcnow()
        if seen.last_used_at is None or now - seen.last_used_at > _TOUCH_EVERY:
            seen.last_used_at = now
            async with self.db.engine.connect() as connection:
                await _touch(connection, seen.token_id, now)
        return True

    async def _read_token(self, token_hash: str) -> Principal | None:
        """The token, its user and their memberships in one indexed read (a row per team),
        cached with the user's auth version read in the same statement."""
        now = utcnow()
        async with self.db.engine.connect() as connection:
            rows = (await connection.execute(_TOKEN_PRINCIPAL, {"token_hash": token_hash})).all()
            if not rows:
                return None
            first = rows[0]
            if first.expires_at is not None and first.expires_at <= now:
                return None
            last_used = first.last_used_at
            # Touch at most every few minutes: a write per request would serialise reads.
            if last_used is None or now - last_used > _TOUCH_EVERY:
                await _touch(connection, first.token_id, now)
                last_used = now
        roles = {row.team: Role(row.role) for row in rows if row.team is not None}
        principal = Principal(first.user_id, first.email, roles, first.name)
        if len(self._seen) >= _CACHED_TOKENS:
            del self._seen[next(iter(self._seen))]
        self._seen[token_hash] = SeenToken(
            token_hash, principal, first.auth_version, first.token_id, first.expires_at, last_used
        )
        return principal

    async def principal_for_email(self, email: str) -> Principal | None:
        """A person by their email, with their roles (None if unknown or disabled)."""
        async with self.db.session() as session:
            user = (await session.exec(select(User).where(User.email == email.strip().lower()))).first()
            if user is None or user.disabled_at:
                return None
            return await _principal(session, user)

    async def sign_in(self, email: str, password: str, *, replacing: str | None = None) -> str | None:
        """A new session token if the password is right; an older session is ended."""
        async with self.db.session() as session:
            user = (await session.exec(select(User).where(User.email == email.strip().lower()))).first()
            if user is None or user.id is None or not user.password_hash or user.disabled_at:
                # The same work either way: no oracle for who exists. Hashing runs off the event loop.
                await asyncio.to_thread(check_password, _dummy_hash(), password)
                return None
            if not await asyncio.to_thread(check_password, user.password_hash, password):
                return None
            token = await _new_session(session, user.id, replacing)
            await session.commit()
            return token

    async def sign_in_vouched(
        self, email: str, memberships: Mapping[str, Role], *, replacing: str | None = None
    ) -> str | None:
        """A new session for a person the identity provider vouched for (OpenID Connect): the
        user made if missing (no password), their role set in each existing team the provider
        names; None if the user is disabled here (a local disable outranks the provider)."""
        email = email.strip().lower()
        async with self.db.session() as session:
            user = (await session.exec(select(User).where(User.email == email))).first()
            if user is not None and user.disabled_at:
                return None
            if user is None:
                user = User(email=email)
                session.add(user)
                await session.flush()
            assert user.id is not None
            changed = False
            for team, role in memberships.items():
                if await session.get(Team, team) is None:
                    continue  # teams are made here (`exosuit team set`), never by a claim
                member = await session.get(Membership, (user.id, team))
                if member is None or member.role != role.value:
                    member = member or Membership(user_id=user.id, team=team, role=role.value)
                    member.role = role.value
                    session.add(member)
                    changed = True
            if changed:
                await _bump(session, user.id)
            token = await _new_session(session, user.id, replacing)
            await session.commit()
            return token

    async def session_for(self, token: str) -> tuple[Principal, str] | None:
        """The principal of a live browser session and its CSRF token."""
        async with self.db.session() as session:
            row = (
                await session.exec(
                    select(WebSession, User)
                    .join(User, User.id == WebSession.user_id)  # type: ignore[arg-type]
                    .where(WebSession.id_hash == hash_token(token))
                )
            ).first()
            if row is None or row[0].expires_at < utcnow() or row[1].disabled_at:
                return None
            web_session, user = row
            return await _principal(session, user), web_session.csrf_token

    async def sign_out(self, token: str) -> None:
        async with self.db.session() as session:
            found = await session.get(WebSession, hash_token(token))
            if found is not None:
                await session.delete(found)
                await session.commit()


async def _user(session: AsyncSession, email: str) -> tuple[User, int]:
    """The user with this email, and their id; LookupError if there is none."""
    user = (await session.exec(select(User).where(User.email == email.strip().lower()))).first()
    if user is None or user.id is None:
        raise LookupError(f"no user {email}")
    return user, user.id


async def _new_session(session: AsyncSession, user_id: int, replacing: str | None) -> str:
    """A new browser session's token (an older one from this browser ended)."""
    if replacing:
        old = await session.get(WebSession, hash_token(replacing))
        if old is not None:
            await session.delete(old)
    token = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            id_hash=hash_token(token),
            user_id=user_id,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=utcnow() + SESSION_LIFETIME,
        )
    )
    return token


async def _touch(connection: AsyncConnection, token_id: int, now: datetime) -> None:
    await connection.execute(update(_TOKEN).where(_TOKEN.c.id == token_id).values(last_used_at=now))
    await connection.commit()


async def _bump(session: AsyncSession, user_id: int) -> None:
    """Every process's cached principals of this user stop standing (their next request reads
    the user's tokens and memberships again): in the transaction that changes them."""
    await session.exec(
        update(_USER).where(_USER.c.id == user_id).values(auth_version=_USER.c.auth_version + 1)
    )


async def _end_sessions(session: AsyncSession, user_id: int) -> None:
    await session.exec(delete(WebSession).where(col(WebSession.user_id) == user_id))


async def _principal(session: AsyncSession, user: User, token_name: str | None = None) -> Principal:
    """A user with their roles, read in the caller's session (one per request)."""
    assert user.id is not None
    members = await session.exec(select(Membership).where(Membership.user_id == user.id))
    return Principal(user.id, user.email, {m.team: Role(m.role) for m in members}, token_name)
