# Sourced by ./run and ./test: create the virtualenv and install the project when pyproject.toml changed.
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
    .venv/bin/pip install --quiet --upgrade pip
    .venv/bin/pip install --quiet -e ".[test]"
    rm -f .venv/.installed-* && touch "$stamp"
fi
