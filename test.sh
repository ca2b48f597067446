#!/usr/bin/env bash
# Everything the checks need on a fresh Debian machine (run as root), then the checks:
# promtool for the alert-rule tests, the local PostgreSQL for the storage tests, a virtual
# environment with the test tools, then `ruff check .`, the whole test suite, and the call
# path's tests again against a compiled build of it (setup.py, HOTLINE400_COMPILE=1).
# Extra arguments go to pytest, and only the suite runs: ./test.sh tests/router/commands -x
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
pytest "$@"
[ $# -eq 0 ] || exit 0

# The call path compiled with mypyc (router/compiled.py) in a copy of the working tree, and
# the tests of the compiled modules and of whole calls through them run against it: the
# copy's extensions are imported before the .py files beside them.
compiled=$(mktemp -d)
trap 'rm -rf "$compiled"' EXIT
git ls-files -co --exclude-standard -z \
    | tar --null --ignore-failed-read -cf - -T - 2>/dev/null | tar -xf - -C "$compiled"
echo "compiling the call path"
(cd "$compiled" && HOTLINE400_COMPILE=1 python setup.py -q build_ext --inplace >build.log 2>&1) \
    || { cat "$compiled/build.log"; exit 1; }
cd "$compiled"
HOTLINE400_EXPECT_COMPILED=1 PYTHONPATH="$compiled" python -m pytest -p no:cacheprovider \
    tests/router/fastagi tests/router/call tests/router/ami tests/router/monitoring \
    tests/router/money tests/router/simulation tests/router/storage \
    tests/router/commands/test_serve_log.py tests/router/test_compiled.py \
    tests/dialplan/test_evaluator.py tests/dialplan/test_forwarding.py tests/dialplan/test_split.py
