# Sourced by scripts/serve and scripts/test: a project virtualenv with the pinned requirements, rebuilt only
# when a requirements file changes. Needs nothing but Python 3.11+ on the machine.
PYTHON_BIN="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON_BIN" -m venv .venv
fi
requirements_stamp=".venv/.installed-$(cat requirements/*.txt | sha1sum | cut -c1-16)"
if [ ! -f "$requirements_stamp" ]; then
    echo "Installing requirements into .venv ..." >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt >&2
    rm -f .venv/.installed-* && touch "$requirements_stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
