# System packages the test suite needs beyond Python: Debian's Chromium, which the admin's browser tests drive
# through Playwright (Playwright's own browser download cannot be used). Runs as root in CI; installs only if missing.
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
fi
/usr/bin/chromium --version 2>/dev/null || true
