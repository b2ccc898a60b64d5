# Shared set-up for scripts/demo.sh and scripts/test.sh: a virtualenv in .venv with the
# project installed in editable mode plus the extras given as arguments.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
extras=$(IFS=,; echo "$*")
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[${extras}]"
export PATH="$PWD/.venv/bin:$PATH"
