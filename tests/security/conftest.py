"""Fixtures of the issue 18 regression tests: staff of each group (tests.admin.conftest) and the demo opt-in."""

from tests.admin.conftest import compliance_officer, operator, other_supervisor, supervisor  # noqa: F401
