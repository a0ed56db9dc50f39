#!/usr/bin/env bash
# Quick pre-commit check: typecheck and lint (the parts of .ci/run that need no server).
set -euo pipefail
cd "$(dirname "$0")/.."
npm run -s typecheck
npm run -s lint
