"""Users, teams, memberships and API tokens."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from exosuit.domain.autonomy import AutonomyLevel, Role, can_approve
from exosuit.storage.db import Database, utcnow
from exosuit.storage.tables import ApiToken, Membership, Team, User, WebSession

_hasher = PasswordHasher()
TOKEN_PREFIX = "exo_"
_TOUCH_EVERY = timedelta(minutes=5)
SESSION_LIFETIME = timedelta(hours=12)


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

    def role_in(self, team: str) -> Role | None:
        return self.roles.get(team)


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
        model_wait_hours: float | None = None,
        max_revisions: int | None = None,
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
            if model_wait_hours is not None:
                team.model_wait_hours = model_wait_hours
            if max_revisions is not None:
                team.max_revisions = max_revisions
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
            await session.commit()
            return user

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
            await session.commit()
            return revoked

    async def disable_user(self, email: str) -> None:
        """The user's sessions end and their tokens stop working, at once."""
        async with self.db.session() as session:
            user, user_id = await _user(session, email)
            user.disabled_at = user.disabled_at or utcnow()
            session.add(user)
            await _end_sessions(session, user_id)
            await session.commit()

    async def principal_for_token(self, token: str) -> Principal | None:
        async with self.db.session() as session:
            row = (
                await session.exec(
                    select(ApiToken, User)
                    .join(User, User.id == ApiToken.user_id)  # type: ignore[arg-type]
                    .where(ApiToken.token_hash == hash_token(token))
                )
            ).first()
            if row is None:
                return None
            api_token, user = row
            now = utcnow()
            if (
                user.disabled_at
                or api_token.revoked_at
                or (api_token.expires_at and api_token.expires_at <= now)
            ):
                return None
            # Touch at most every few minutes: a write per request would serialise reads.
            if api_token.last_used_at is None or now - api_token.last_used_at > _TOUCH_EVERY:
                api_token.last_used_at = now
                session.add(api_token)
                await session.commit()
            return await _principal(session, user, token_name=api_token.name)

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
            if replacing:
                old = await session.get(WebSession, hash_token(replacing))
                if old is not None:
                    await session.delete(old)
            token = secrets.token_urlsafe(32)
            session.add(
                WebSession(
                    id_hash=hash_token(token),
                    user_id=user.id,
                    csrf_token=secrets.token_urlsafe(32),
                    expires_at=utcnow() + SESSION_LIFETIME,
                )
            )
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


async def _end_sessions(session: AsyncSession, user_id: int) -> None:
    await session.exec(delete(WebSession).where(col(WebSession.user_id) == user_id))


async def _principal(session: AsyncSession, user: User, token_name: str | None = None) -> Principal:
    """A user with their roles, read in the caller's session (one per request)."""
    assert user.id is not None
    members = await session.exec(select(Membership).where(Membership.user_id == user.id))
    return Principal(user.id, user.email, {m.team: Role(m.role) for m in members}, token_name)
