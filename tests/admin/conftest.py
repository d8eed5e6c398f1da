import pytest
from django.contrib.auth.models import Group

from console.roles import COMPLIANCE, OPERATIONS, SUPERVISORS
from tests.factories import StaffFactory
from tests.trading.quote_desk import clock, desk  # noqa: F401 - fixtures of the quoting desk's console tests


def staff_in(group_name: str, **kwargs):
    user = StaffFactory(**kwargs)
    user.groups.add(Group.objects.get(name=group_name))
    return user


@pytest.fixture
def operator(db):
    return staff_in(OPERATIONS, username="operator")


@pytest.fixture
def supervisor(db):
    return staff_in(SUPERVISORS, username="supervisor")


@pytest.fixture
def other_supervisor(db):
    return staff_in(SUPERVISORS, username="supervisor2")


@pytest.fixture
def compliance_officer(db):
    return staff_in(COMPLIANCE, username="compliance")
