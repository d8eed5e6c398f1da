# System packages the test suite needs beyond Python: Debian's Chromium, which the admin's browser tests drive
# through Playwright (Playwright's own browser download cannot be used), and RabbitMQ, whose server the events
# tests start as a private node. Runs as root in CI; installs only if missing.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v rabbitmq-server >/dev/null || missing+=(rabbitmq-server)
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
/usr/bin/chromium --version 2>/dev/null || true
