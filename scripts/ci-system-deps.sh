# System packages the test suite needs beyond Python: Debian's Chromium, which the admin's browser tests drive
# through Playwright (Playwright's own browser download cannot be used). Runs as root in CI; installs only if missing.
# The operations tests (tests/ops, tests/reliability/test_failover.py) start private PostgreSQL and Redis
# instances and a RabbitMQ broker: postgresql (initdb, pg_ctl), redis-server, rabbitmq-server, runuser;
# the events tests start private RabbitMQ nodes too.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -n "$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null)" ] || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v rabbitmq-server >/dev/null || missing+=(rabbitmq-server)
command -v runuser >/dev/null || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
/usr/bin/chromium --version 2>/dev/null || true
