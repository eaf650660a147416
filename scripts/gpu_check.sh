#!/usr/bin/env bash
# The prepared GPU check: python -m progressgym.gpu_check from this working tree, in one call.
#
#   bash scripts/gpu_check.sh --pack      # here, once: copy the pure-Python packages the GPU machine lacks
#                                         # (and the official item files, when found) into .gpu_carry/
#   bash scripts/gpu_check.sh [ARGS]      # there: run the check (ARGS go to progressgym.gpu_check)
#
# The GPU machine's Python has torch, transformers, peft and accelerate but not pydantic, gymnasium or
# rapidfuzz, and nothing can be installed there; .gpu_carry/ (git-ignored, about 26 MB) is carried with the
# working tree and put on PYTHONPATH only when those imports fail. Figures go to $OUT (or gpu_check_out/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARRY="$ROOT/.gpu_carry"
PYTHON="${PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON="python3"; fi
fi

if [[ "${1:-}" == "--pack" ]]; then
  SITE="$("$PYTHON" -c 'import pydantic, os; print(os.path.dirname(os.path.dirname(pydantic.__file__)))')"
  rm -rf "$CARRY" && mkdir -p "$CARRY/site"
  for pkg in pydantic pydantic_core typing_inspection annotated_types gymnasium cloudpickle \
    farama_notifications rapidfuzz typing_extensions.py; do
    cp -r "$SITE/$pkg" "$CARRY/site/"
  done
  DATA="${BANK_PATH:-$ROOT/../shared/data/progressgym-moralevals}"
  if [[ -f "$DATA/moralchoice.csv" ]]; then
    mkdir -p "$CARRY/bank" && cp "$DATA"/*.csv "$CARRY/bank/"
  fi
  du -sh "$CARRY"
  exit 0
fi

cd "$ROOT"
if ! "$PYTHON" -c 'import pydantic, gymnasium, rapidfuzz' 2>/dev/null; then
  if [[ -d "$CARRY/site" ]]; then
    export PYTHONPATH="$CARRY/site${PYTHONPATH:+:$PYTHONPATH}"
  else
    echo "gpu_check: pydantic, gymnasium or rapidfuzz is missing; run 'bash scripts/gpu_check.sh --pack' where" \
      "they are installed and carry .gpu_carry/" >&2
  fi
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PROGRESSGYM_CACHE="${PROGRESSGYM_CACHE:-$(mktemp -d)}"
BANK_ARGS=()
if [[ -f "$CARRY/bank/moralchoice.csv" ]]; then BANK_ARGS=(--bank-path "$CARRY/bank"); fi
exec "$PYTHON" -m progressgym.gpu_check --out "${OUT:-gpu_check_out}" ${BANK_ARGS[@]+"${BANK_ARGS[@]}"} "$@"
