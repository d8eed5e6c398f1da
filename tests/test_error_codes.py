"""The error-code catalogue: the README lists exactly the codes of the project's ``Code`` enums, and the code
raises only catalogued codes (issue 11: a documented code that no longer exists, or an undocumented one, fails)."""

import ast
import re
from pathlib import Path

from core.api.codes import all_codes, catalogue

ROOT = Path(__file__).resolve().parent.parent
APPS = ["core", "audit", "events", "ledger", "accounts", "trading", "compliance", "console", "streams"]


def readme_catalogue() -> dict[str, set[str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("#### Error code catalogue", 1)[1].split("\n#", 1)[0]
    listed = {}
    for item in re.split(r"\n- ", section)[1:]:
        enum_path = re.search(r"\(`([\w.]+)`\)", item).group(1)
        listed[enum_path] = set(re.findall(r"`([a-z_]+)`", item.split("):", 1)[1]))
    return listed


def test_the_readme_lists_exactly_the_codes_of_each_enum():
    listed = readme_catalogue()
    for _, enum in catalogue():
        path = f"{enum.__module__}.{enum.__name__}"
        assert listed.pop(path, None) == {member.value for member in enum}, path
    assert not listed, f"README lists enums that do not exist: {sorted(listed)}"


def test_every_code_is_an_enum_member_never_a_string_literal():
    """``code="..."`` in a raise, or ``code = "..."`` on an error class, is refused: members only."""
    strays = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                value = None
                if isinstance(node, ast.keyword) and node.arg == "code":
                    value = node.value
                elif isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "code" for t in node.targets):
                    value = node.value
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    strays.append(f"{path.relative_to(ROOT)}:{node.lineno} {value.value}")
    assert not strays, strays


def test_the_generic_error_table_names_only_catalogued_codes():
    text = (ROOT / "README.md").read_text()
    table = text.split("| status | code | when |", 1)[1].split("\n\n", 1)[0]
    codes = {c for row in table.splitlines()[1:] for c in re.findall(r"`([a-z_]+)`", row.split("|")[2])}
    assert codes and codes <= all_codes(), sorted(codes - all_codes())
