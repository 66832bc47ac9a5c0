"""The directory, kept in step by the registry (service tokens only; user tokens get 403).

Our paths (Quay has no such calls). Every PUT creates the thing or makes it exactly as the body
describes (omitted e-mail → none; admins and members replaced), so sending it twice changes
nothing; each answers 200 with what is stored. Every DELETE answers 204, or 404 when the thing
does not exist.

- ``PUT|DELETE /api/v1/directory/users/{name}``: body ``{"email"?}``
- ``PUT|DELETE /api/v1/directory/organizations/{name}``: body ``{"email"?, "admins": [user]}``
- ``PUT|DELETE /api/v1/directory/organizations/{org}/teams/{team}``: body ``{"members": [user]}``
- ``PUT|DELETE /api/v1/repository/{ns}/{repo}/permissions/users/{name}``: body ``{"role"}``
- ``PUT|DELETE /api/v1/repository/{ns}/{repo}/permissions/teams/{org}/{team}``: body
  ``{"role"}``; the team's organization must be the repository's namespace

A bad body (unknown keys, a role other than read/write/admin, an unknown user among admins or
members) is 400 with a message naming the problem; something named in the path that does not
exist is 404. Nothing is stored when a call fails.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from notifier import directory
from notifier.api.deps import SessionDep, require_service
from notifier.errors import InvalidInput, NotFound

router = APIRouter(tags=["directory"], dependencies=[Depends(require_service)])

USER = "/api/v1/directory/users/{name}"
ORGANIZATION = "/api/v1/directory/organizations/{name}"
TEAM = "/api/v1/directory/organizations/{org}/teams/{team}"
USER_PERMISSION = "/api/v1/repository/{repository:path}/permissions/users/{name}"
TEAM_PERMISSION = "/api/v1/repository/{repository:path}/permissions/teams/{org}/{team}"


class Body(BaseModel):
    """A request body; unknown keys are refused (400)."""

    model_config = ConfigDict(extra="forbid")


class UserBody(Body):
    email: str | None = None


class OrganizationBody(Body):
    email: str | None = None
    admins: list[str] = Field(description="user names: the organization's admins, exactly")


class TeamBody(Body):
    members: list[str] = Field(description="user names: the team's members, exactly")


class RoleBody(Body):
    role: str = Field(json_schema_extra={"enum": list(directory.ROLES)})


@contextmanager
def users_named_in_body() -> Iterator[None]:
    """An unknown user among a body's names is bad input (400), not a missing resource (404)."""
    try:
        yield
    except NotFound as exc:
        raise InvalidInput(str(exc)) from None


def _names(names: Iterable[str]) -> list[str]:
    return sorted(set(names))


# --- users and organizations -------------------------------------------------------------------

@router.put(USER)
def put_user(name: str, body: UserBody, session: SessionDep) -> dict[str, Any]:
    """Create user ``name`` or set its e-mail address; 400 for an organization's name."""
    user = directory.save_user(session, name, email=body.email)
    return {"name": user.name, "email": user.email}


@router.delete(USER, status_code=204)
def delete_user(name: str, session: SessionDep) -> None:
    """Delete user ``name`` with its memberships, grants, tokens and in-app notifications."""
    directory.remove_user(session, name)


@router.put(ORGANIZATION)
def put_organization(name: str, body: OrganizationBody, session: SessionDep) -> dict[str, Any]:
    """Create organization ``name`` or update it; its admins become exactly ``admins``."""
    with users_named_in_body():
        organization = directory.save_organization(session, name, email=body.email,
                                                   admins=body.admins)
    return {"name": organization.name, "email": organization.email,
            "admins": _names(body.admins)}


@router.delete(ORGANIZATION, status_code=204)
def delete_organization(name: str, session: SessionDep) -> None:
    """Delete organization ``name`` with its teams, their grants and its notifications."""
    directory.remove_organization(session, name)


# --- teams -------------------------------------------------------------------------------------

@router.put(TEAM)
def put_team(org: str, team: str, body: TeamBody, session: SessionDep) -> dict[str, Any]:
    """Create team ``team`` of organization ``org`` or set its members; 404 for an unknown org."""
    directory.find_organization(session, org)
    with users_named_in_body():
        directory.save_team(session, org, team, members=body.members)
    return {"organization": org, "name": team, "members": _names(body.members)}


@router.delete(TEAM, status_code=204)
def delete_team(org: str, team: str, session: SessionDep) -> None:
    """Delete a team with its memberships and grants."""
    directory.remove_team(session, org, team)


# --- repository permissions --------------------------------------------------------------------

@router.put(USER_PERMISSION)
def put_user_permission(repository: str, name: str, body: RoleBody,
                        session: SessionDep) -> dict[str, Any]:
    """Give user ``name`` ``role`` on the repository, replacing any role it held."""
    directory.grant(session, repository, body.role, user=name)
    return {"repository": repository, "user": name, "role": body.role}


@router.delete(USER_PERMISSION, status_code=204)
def delete_user_permission(repository: str, name: str, session: SessionDep) -> None:
    """Take away the role user ``name`` holds on the repository."""
    directory.revoke(session, repository, user=name)


@router.put(TEAM_PERMISSION)
def put_team_permission(repository: str, org: str, team: str, body: RoleBody,
                        session: SessionDep) -> dict[str, Any]:
    """Give team ``org/team`` ``role`` on the repository; ``org`` must be its namespace."""
    directory.grant(session, repository, body.role, team=f"{org}/{team}")
    return {"repository": repository, "team": f"{org}/{team}", "role": body.role}


@router.delete(TEAM_PERMISSION, status_code=204)
def delete_team_permission(repository: str, org: str, team: str, session: SessionDep) -> None:
    """Take away the role team ``org/team`` holds on the repository."""
    directory.revoke(session, repository, team=f"{org}/{team}")
