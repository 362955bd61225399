#!/usr/bin/env bash
# The whole test suite, from a fresh checkout: virtual environment, dependencies, then pytest.
# Integration tests start real Prometheus, Alertmanager and Slurm on 127.0.0.1 through
# scripts/stack.py (installing Debian's packages when missing and running as root) and stop
# exactly the processes they started. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"

# Qt's off-screen platform needs a few system libraries that minimal images lack.
export QT_QPA_PLATFORM=offscreen
if ! .venv/bin/python -c "from PySide6.QtWidgets import QApplication; QApplication([])" >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing the system libraries Qt needs (Debian packages)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libgl1 libegl1 libxkbcommon0 \
            libfontconfig1 libdbus-1-3 fonts-dejavu-core >/dev/null
    else
        echo "warning: Qt cannot start off-screen here and system libraries cannot be installed" >&2
    fi
fi

# The real servers' Debian packages (also promtool, which the rule tests call, and slurmdbd with
# MariaDB for the accounting stack): installed before
# the run so that no test skips for a package the integration stack would install later anyway.
# Where they cannot be installed, the tests concerned say why (and fail under CI=true).
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    .venv/bin/python -c "import sys; sys.path.insert(0, 'scripts'); import stack; stack.ensure_packages('bookworm')" \
        || echo "warning: the stack's Debian packages could not be installed" >&2
fi

exec .venv/bin/python -m pytest "$@"
