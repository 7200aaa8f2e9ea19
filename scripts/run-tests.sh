#!/usr/bin/env bash
# The test suite behind `make test`: static checks, ansible-test sanity on the built collection, then pytest
# (unit, sandbox, integration, end-to-end). `scripts/run-tests.sh STAGE` runs one stage: lint | sanity | unit | pytest.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bin="$top/.venv/bin"
stage=${1:-all}

lint() {
  echo "== ruff"
  "$bin/ruff" check plugins extensions sandbox tests bench
  "$bin/ruff" format --check plugins extensions sandbox tests bench
  echo "== mypy (module_utils, modules, event sources; settings in pyproject.toml)"
  local built=build/collections/ansible_collections/zerotouch/selfheal
  "$bin/mypy" --no-error-summary "$built/plugins/module_utils/" "$built/plugins/modules/" \
    "$built/extensions/eda/plugins/event_source/" || { echo "mypy failed"; return 1; }
  echo "== ansible-lint (production profile)"
  "$bin/ansible-lint" --offline -q
}

sanity() {
  echo "== ansible-test sanity (on the installed collection)"
  # Outside the checkout: inside it, ansible-test lists files through git, finds this copy ignored, and skips all.
  local work
  work=$(mktemp -d /tmp/selfheal-sanity.XXXXXX)
  trap 'rm -rf "$work"' RETURN
  local dir="$work/ansible_collections/zerotouch"
  mkdir -p "$dir"
  cp -a "$top/.collections/ansible_collections/zerotouch/selfheal" "$dir/"
  # ansible-test bootstraps pip in its virtualenvs with a get-pip script it downloads from a host outside this
  # network; put an equivalent where it looks first (see scripts/get_pip_offline.py).
  local pip_version
  pip_version=$("$bin/python" - <<'PY'
import re, ansible_test._internal.python_requirements as r, inspect
print(re.search(r"pip='([0-9.]+)'", inspect.getsource(r.get_venv_packages)).group(1))
PY
)
  mkdir -p ~/.ansible/test/cache
  cp "$top/scripts/get_pip_offline.py" ~/.ansible/test/cache/get_pip_${pip_version//./_}.py
  (cd "$dir/selfheal" && "$bin/ansible-test" sanity --venv --python 3.11 --color no)
}

run_pytest() {
  echo "== pytest"
  # The slowest tests are printed at the end: make test has a time budget (35 min on 2 cores), watch it.
  "$bin/pytest" -p no:cacheprovider --durations=25 "$@"
}

case "$stage" in
  lint) lint ;;
  sanity) sanity ;;
  unit) run_pytest tests/unit ;;
  pytest) shift || true; run_pytest "$@" ;;
  all) lint; sanity; run_pytest ;;
  *) echo "unknown stage $stage (lint | sanity | unit | pytest | all)"; exit 2 ;;
esac
