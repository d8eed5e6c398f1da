"""The house's fences: imports point one way, and vendor-specific SQL stays in its rooms (README "Architecture")."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ["core", "audit", "events", "ledger", "accounts", "trading", "compliance", "console", "streams", "brokerage"]
VENDOR_SQL_MODULES = {"core/db.py", "events/sql.py", "ledger/sql.py", "trading/sql.py"}


def test_import_contracts_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_only_the_sql_modules_branch_on_the_database_vendor():
    branching = {
        str(path.relative_to(ROOT))
        for app in APPS
        for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts and "connection.vendor" in path.read_text()
    }
    assert branching <= VENDOR_SQL_MODULES, sorted(branching - VENDOR_SQL_MODULES)
