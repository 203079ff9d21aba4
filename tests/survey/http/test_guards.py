"""The guards' own contract: a staff guard names its roles, and the principal it found is
what handlers receive."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import TestClient

from survey.context import AppContext
from survey.http.guards import StaffGuard, staff
from tests.survey.access_builders import add_staff


def test_a_staff_guard_names_its_roles() -> None:
    guard = staff("admin", "statistician")
    assert isinstance(guard, StaffGuard)
    assert guard.roles == ("admin", "statistician")
    assert staff("admin") == staff("admin")


def test_handlers_receive_the_principal_the_guard_found(app: Litestar, context: AppContext) -> None:
    viewer = add_staff(context, "vida", "viewer")
    with TestClient(app) as client:
        me = client.get("/api/v1/me", headers=viewer)
        assert me.status_code == 200
        assert me.json() == {
            "username": "vida",
            "role": "viewer",
            "agency": None,
            "via": "bearer",
            "csrf_token": None,
        }
        assert client.get("/api/v1/users", headers=viewer).status_code == 403
