#!/usr/bin/env bash
# The nightly job on this machine: set up, bring up the local stack (reused if this
# checkout's one is already up), build and check the whole stack with
# `pytest --stack=fresh`, then build the report and print where it is.
#
# Extra arguments go to pytest (e.g. `-n 2`, `--stack-profile stacks/other.yaml`).
# Exit status: pytest's (see README); 10 setup failed; 11 the local stack could not
# start (its message says why: e.g. ports taken); 12 the report could not be built.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 10
venv="${MESHSTACK_VENV:-.venv}"
results=reports/allure-results
rm -rf "$results"
"$venv/bin/meshstack" local up || exit 11
"$venv/bin/python" -m pytest suites --stack=fresh \
  --alluredir="$results" --junitxml=reports/junit.xml "$@"
status=$?
"$venv/bin/meshstack" report --results "$results" --output reports/out || exit 12
exit "$status"
