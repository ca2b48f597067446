#!/usr/bin/env bash
# Everything the checks need on a fresh Debian machine (run as root), then the checks:
# promtool for the alert-rule tests, the local PostgreSQL for the storage tests, a virtual
# environment with the test tools, then `ruff check .`, `ruff format --check .` and the whole
# test suite.
# Extra arguments go to pytest: ./test.sh tests/router/commands/test_cli.py -x
# The suite runs in three pytest-xdist workers: its tests mostly wait on sockets, daemons
# and the browser (one worker keeps a core about half busy), so three share two cores well.
# Every test has its own ports, files and PostgreSQL schema.
set -euo pipefail
cd "$(dirname "$0")"

install() {
    echo "installing $1"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
}

# A command the tests run, from the Debian package that provides it.
need() {
    command -v "$1" >/dev/null || install "$2"
}

need promtool prometheus   # tests/router/monitoring/test_monitoring_config.py checks config/prometheus/alerts.yml
need chromium chromium                   # the console's browser tests (tests/console/)
need chromedriver chromium-driver        # Selenium drives Debian's chromium through it
# The console's pages and report images show Chinese province and city names.
fc-list :lang=zh 2>/dev/null | grep -q . || install fonts-noto-cjk

# The storage tests use the local PostgreSQL: 127.0.0.1:5432, trust auth, database `test`.
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "starting PostgreSQL"
    for version in /etc/postgresql/*; do
        pg_ctlcluster --skip-systemctl-redirect "$(basename "$version")" main start
    done
    for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432
psql -h 127.0.0.1 -U postgres -Atc "SELECT 1 FROM pg_database WHERE datname = 'test'" \
    | grep -q 1 || createdb -h 127.0.0.1 -U postgres test

[ -x .venv/bin/python ] || python3 -m venv .venv
. .venv/bin/activate
pip install -q -e '.[test]'
ruff check .
ruff format --check .
pytest -n 3 "$@"
