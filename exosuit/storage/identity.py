"""Users, teams, memberships and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from exosuit.domain.autonomy import AutonomyLevel, Role, can_approve
from exosuit.storage.db import Database, utcnow
from exosuit.storage.tables import ApiToken, Membership, Team, User, WebSession

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password anyone has")
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
                user.password_hash = hash_password(password)
            session.add(user)
            await session.flush()
            assert user.id is not None
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

    async def create_token(self, email: str, name: str = "default") -> str:
        """A new API token for the user; only its hash is stored."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        async with self.db.session() as session:
            user = (await session.exec(select(User).where(User.email == email.lower()))).first()
            if user is None or user.id is None:
                raise LookupError(f"no user {email}")
            session.add(ApiToken(user_id=user.id, name=name, token_hash=hash_token(token)))
            await session.commit()
        return token

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
            # Touch at most every few minutes: a write per request would serialise reads.
            if api_token.last_used_at is None or now - api_token.last_used_at > _TOUCH_EVERY:
                api_token.last_used_at = now
                session.add(api_token)
                await session.commit()
            return await _principal(session, user, token_name=api_token.name)

    async def sign_in(self, email: str, password: str, *, replacing: str | None = None) -> str | None:
        """A new session token if the password is right; an older session is ended."""
        async with self.db.session() as session:
            user = (await session.exec(select(User).where(User.email == email.strip().lower()))).first()
            if user is None or user.id is None or not user.password_hash:
                check_password(_DUMMY_HASH, password)  # same work either way: no user oracle
                return None
            if not check_password(user.password_hash, password):
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
            if row is None or row[0].expires_at < utcnow():
                return None
            web_session, user = row
            return await _principal(session, user), web_session.csrf_token

    async def sign_out(self, token: str) -> None:
        async with self.db.session() as session:
            found = await session.get(WebSession, hash_token(token))
            if found is not None:
                await session.delete(found)
                await session.commit()


async def _principal(session: AsyncSession, user: User, token_name: str | None = None) -> Principal:
    """A user with their roles, read in the caller's session (one per request)."""
    assert user.id is not None
    members = await session.exec(select(Membership).where(Membership.user_id == user.id))
    return Principal(user.id, user.email, {m.team: Role(m.role) for m in members}, token_name)
