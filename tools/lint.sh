#!/usr/bin/env bash
# Lint as OpenMMLab projects do (settings in setup.cfg): flake8, isort and
# yapf must all pass; prints what to change and exits non-zero otherwise.
#   bash tools/lint.sh          # check
#   bash tools/lint.sh --fix    # rewrite the files with isort and yapf
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py="${PYTHON:-.venv/bin/python}"
paths=(querypose_mm tools tests configs demo setup.py)
if [[ "${1:-}" == "--fix" ]]; then
  "$py" -m isort "${paths[@]}" &&
    "$py" -m yapf -i -r -e 'querypose_mm/.mim/*' "${paths[@]}"
  exit $?
fi
rc=0
"$py" -m flake8 "${paths[@]}" || rc=1
"$py" -m isort --check-only --diff "${paths[@]}" || rc=1
yapf_diff="$("$py" -m yapf --diff -r -e 'querypose_mm/.mim/*' "${paths[@]}")" || true
if [[ -n "$yapf_diff" ]]; then
  printf '%s\n' "$yapf_diff"
  echo 'yapf would reformat the files above (bash tools/lint.sh --fix)' >&2
  rc=1
fi
[[ $rc -eq 0 ]] && echo 'lint: flake8, isort and yapf pass'
exit $rc
