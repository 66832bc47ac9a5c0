"""The directory: users, organizations, teams and repository permissions, and who is an admin.

Users and organizations share one namespace: a name is either a user or an organization.
``save_*`` calls work like an HTTP PUT: they create the thing or make it exactly as described
(admins and members included), so sending the same description twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, delete, insert, or_, select
from sqlalchemy.orm import Session

from notifier.errors import InvalidInput, NotFound
from notifier.events import split_repository
from notifier.models import (
    AuthorizedEmail,
    Event,
    Notification,
    Organization,
    OrganizationAdmin,
    RepositoryPermission,
    Team,
    TeamMember,
    User,
)

ROLES = ("read", "write", "admin")
NAME_MAX = 255
EMAIL_MAX = 320


# --- users and organizations ---------------------------------------------------------------

def save_user(session: Session, name: str, *, email: str | None = None) -> User:
    """Create user ``name`` or set its e-mail address; refuses an organization's name."""
    _check_name("user", name)
    _check_email(email)
    _refuse_taken_namespace(session, Organization, name, "an organization")
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        user = User(name=name)
        session.add(user)
    user.email = email
    session.flush()
    return user


def save_organization(session: Session, name: str, *, email: str | None = None,
                      admins: Iterable[str] = ()) -> Organization:
    """Create organization ``name`` or update it; its admins become exactly ``admins``."""
    _check_name("organization", name)
    _check_email(email)
    _refuse_taken_namespace(session, User, name, "a user")
    admin_ids = [user.id for user in _users_named(session, admins)]
    organization = session.scalar(select(Organization).where(Organization.name == name))
    if organization is None:
        organization = Organization(name=name)
        session.add(organization)
    organization.email = email
    session.flush()
    _replace_links(session, OrganizationAdmin.organization_id, organization.id, admin_ids)
    return organization


def remove_user(session: Session, name: str) -> None:
    """Delete user ``name`` with its memberships, grants, tokens and in-app notifications, and
    everything of its namespace's repositories (see ``forget_namespace``)."""
    session.delete(find_user(session, name))
    forget_namespace(session, name)
    session.flush()


def remove_organization(session: Session, name: str) -> None:
    """Delete organization ``name`` with its teams, their grants and its in-app notifications,
    and everything of its namespace's repositories (see ``forget_namespace``)."""
    session.delete(find_organization(session, name))
    forget_namespace(session, name)
    session.flush()


def forget_namespace(session: Session, namespace: str) -> None:
    """Delete what the repositories ``namespace/...`` own: notifications (their secrets) with
    their deliveries, events, e-mail authorizations and permissions. Whoever gets the name
    next starts with none of it, and cannot read the webhook secrets of the one before."""
    for model in (Notification, Event, AuthorizedEmail, RepositoryPermission):
        session.execute(delete(model).where(
            model.repository.startswith(f"{namespace}/", autoescape=True)))


def namespace_exists(session: Session, name: str) -> bool:
    """Whether a user or an organization holds ``name``."""
    return any(session.scalar(select(model.id).where(model.name == name)) is not None
               for model in (User, Organization))


def find_user(session: Session, name: str) -> User:
    """The user called ``name``; NotFound otherwise."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no user named {name!r}")
    return user


def find_organization(session: Session, name: str) -> Organization:
    """The organization called ``name``; NotFound otherwise."""
    organization = session.scalar(select(Organization).where(Organization.name == name))
    if organization is None:
        raise NotFound(f"no organization named {name!r}")
    return organization


# --- teams -----------------------------------------------------------------------------------

def save_team(session: Session, organization_name: str, team_name: str, *,
              members: Iterable[str] = ()) -> Team:
    """Create team ``team_name`` in an organization or update it; members become ``members``."""
    _check_name("team", team_name)
    organization = find_organization(session, organization_name)
    member_ids = [user.id for user in _users_named(session, members)]
    team = session.scalar(select(Team).where(Team.organization_id == organization.id,
                                             Team.name == team_name))
    if team is None:
        team = Team(organization_id=organization.id, name=team_name)
        session.add(team)
        session.flush()
    _replace_links(session, TeamMember.team_id, team.id, member_ids)
    return team


def remove_team(session: Session, organization_name: str, team_name: str) -> None:
    """Delete a team with its memberships and grants."""
    session.delete(find_team(session, organization_name, team_name))
    session.flush()


def find_team(session: Session, organization_name: str, team_name: str) -> Team:
    """The team ``team_name`` of organization ``organization_name``; NotFound otherwise."""
    team = session.scalar(
        select(Team).join(Organization, Organization.id == Team.organization_id)
        .where(Organization.name == organization_name, Team.name == team_name))
    if team is None:
        raise NotFound(f"no team {team_name!r} in organization {organization_name!r}")
    return team


def team_members(session: Session, organization_name: str, team_name: str) -> list[User]:
    """The current members of a team, by name; NotFound when the team does not exist."""
    team = find_team(session, organization_name, team_name)
    return list(session.scalars(
        select(User).join(TeamMember, TeamMember.user_id == User.id)
        .where(TeamMember.team_id == team.id).order_by(User.name)))


# --- repository permissions ------------------------------------------------------------------

def grant(session: Session, repository: str, role: str, *, user: str | None = None,
          team: str | None = None) -> RepositoryPermission:
    """Give ``user`` or ``team`` ("ORG/TEAM") ``role`` on ``repository``, replacing their role."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    grantee = _grantee(session, repository, user, team)
    permission = _permission(session, repository, grantee)
    if permission is None:
        permission = RepositoryPermission(repository=repository, **grantee)
        session.add(permission)
    permission.role = role
    session.flush()
    return permission


def revoke(session: Session, repository: str, *, user: str | None = None,
           team: str | None = None) -> None:
    """Take away the role ``user`` or ``team`` ("ORG/TEAM") holds on ``repository``."""
    permission = _permission(session, repository, _grantee(session, repository, user, team))
    if permission is None:
        raise NotFound(f"{user or team} holds no role on {repository}")
    session.delete(permission)
    session.flush()


def is_repository_admin(session: Session, user_name: str, repository: str) -> bool:
    """Whether ``user_name`` may manage ``repository``'s notifications (api.md's admin rule)."""
    found = session.scalar(
        select(User.id).where(User.name == user_name, _is_admin_of(repository)).limit(1))
    return found is not None


def repository_admins(session: Session, repository: str) -> list[User]:
    """Every user who is an admin of ``repository``, by name."""
    return list(session.scalars(select(User).where(_is_admin_of(repository))
                                .order_by(User.name)))


def _is_admin_of(repository: str) -> ColumnElement[bool]:
    """A condition on User: the namespace is the user, an admin of the namespace organization,
    or holds ``admin`` on the repository directly or through a team."""
    namespace, _ = split_repository(repository)
    admin_grants = (RepositoryPermission.repository == repository,
                    RepositoryPermission.role == "admin")
    namespace_admins = (select(OrganizationAdmin.user_id)
                        .join(Organization, Organization.id == OrganizationAdmin.organization_id)
                        .where(Organization.name == namespace))
    granted = select(RepositoryPermission.user_id).where(*admin_grants)
    granted_to_team = (select(TeamMember.user_id)
                       .join(RepositoryPermission,
                             RepositoryPermission.team_id == TeamMember.team_id)
                       .where(*admin_grants))
    return or_(User.name == namespace, User.id.in_(namespace_admins), User.id.in_(granted),
               User.id.in_(granted_to_team))


# --- helpers ---------------------------------------------------------------------------------

def _check_name(kind: str, name: object) -> None:
    if not isinstance(name, str) or not name or len(name) > NAME_MAX:
        raise InvalidInput(f"a {kind} name must be 1 to {NAME_MAX} characters")
    if "/" in name or any(c.isspace() for c in name):
        raise InvalidInput(f"{kind} name {name!r} must not contain '/' or spaces")


def _check_email(email: object) -> None:
    if email is None:
        return
    if not isinstance(email, str) or "@" not in email or len(email) > EMAIL_MAX:
        raise InvalidInput(f"{email!r} is not an e-mail address")


def _refuse_taken_namespace(session: Session, other: type[User | Organization], name: str,
                            taken_by: str) -> None:
    """Users and organizations share names: refuse ``name`` when ``other`` already holds it."""
    if session.scalar(select(other.id).where(other.name == name)) is not None:
        raise InvalidInput(f"{name!r} is already {taken_by}; users and organizations share "
                           "one namespace")


def _users_named(session: Session, names: Iterable[str]) -> list[User]:
    """The users called ``names``, in one query; NotFound names every unknown one."""
    wanted = sorted(set(names))
    users = list(session.scalars(select(User).where(User.name.in_(wanted)))) if wanted else []
    unknown = sorted(set(wanted) - {user.name for user in users})
    if unknown:
        raise NotFound(f"no {'user' if len(unknown) == 1 else 'users'} named "
                       f"{', '.join(map(repr, unknown))}")
    return users


def _replace_links(session: Session, owner_column, owner_id: int, user_ids: list[int]) -> None:
    """Make the users linked to one owner (an organization's admins, a team's members)
    exactly ``user_ids``."""
    link = owner_column.class_
    session.execute(delete(link).where(owner_column == owner_id))
    if user_ids:
        session.execute(insert(link), [{owner_column.key: owner_id, "user_id": user_id}
                                       for user_id in user_ids])


def _grantee(session: Session, repository: str, user: str | None,
             team: str | None) -> dict[str, int]:
    """The permission columns naming one user or one team ("ORG/TEAM") of the namespace."""
    if (user is None) == (team is None):
        raise InvalidInput("name exactly one grantee: a user or a team")
    namespace, _ = split_repository(repository)
    if user is not None:
        return {"user_id": find_user(session, user).id}
    organization_name, slash, team_name = team.partition("/")
    if not slash or not organization_name or not team_name:
        raise InvalidInput(f"team {team!r} must be written ORG/TEAM")
    if organization_name != namespace:
        raise InvalidInput(f"team {team!r} can only hold roles on repositories of "
                           f"{organization_name!r}, not on {repository}")
    return {"team_id": find_team(session, organization_name, team_name).id}


def _permission(session: Session, repository: str,
                grantee: dict[str, int]) -> RepositoryPermission | None:
    return session.scalar(select(RepositoryPermission)
                          .filter_by(repository=repository, **grantee))
