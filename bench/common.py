"""Shared set-up for benchmark scripts: Django on PostgreSQL, percentiles, printing figures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/brokerage_bench")
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokerage.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def fresh_database() -> None:
    """Drop and re-create the bench database, then migrate it, so every run starts from the same state."""
    import psycopg
    from django.conf import settings
    from django.core.management import call_command

    name = settings.DATABASES["default"]["NAME"]
    admin = {k: v for k, v in settings.DATABASES["default"].items() if k in ("HOST", "PORT", "USER", "PASSWORD")}
    with psycopg.connect(
        host=admin.get("HOST") or "127.0.0.1", port=admin.get("PORT") or 5432, user=admin.get("USER") or "postgres",
        password=admin.get("PASSWORD") or None, dbname="postgres", autocommit=True,
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    from django.db import connections

    connections.close_all()
    call_command("migrate", verbosity=0)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def report(title: str, figures: dict[str, str]) -> None:
    print(f"== {title}")
    for name, value in figures.items():
        print(f"   {name:<34} {value}")


def tree_cpu_seconds(root_pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its children, e.g. a Celery worker and its pool.
    Children that have exited count too (in their parent's cutime and cstime once it has waited for them, as
    PostgreSQL's postmaster does for every backend), so a connection closed in between does not take its CPU away."""
    return trees_cpu_seconds({root_pid: root_pid})[root_pid]


def trees_cpu_seconds(roots: dict) -> dict:
    """``tree_cpu_seconds`` of each root process (``{name: pid}``) from one pass over /proc: ``{name: seconds}``."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry)] = (int(fields[1]), sum(map(int, fields[11:15])))  # ppid, u+s time, children's
    totals = {}
    for name, root_pid in roots.items():
        tree = {root_pid}
        for pid, (ppid, _) in sorted(stats.items()):
            if ppid in tree:
                tree.add(pid)
        totals[name] = sum(stats.get(pid, (0, 0))[1] for pid in tree) / os.sysconf("SC_CLK_TCK")
    return totals
