#!/bin/sh
# tools/prereq.sh: owns the check `make` runs before it sets up .venv -- what the set-up
# needs and cannot install itself: python3 3.11 or newer, with its venv module and
# ensurepip (Debian and Ubuntu ship those apart, in python3-venv, and `python3 -m venv`
# would only fail after a while). Takes well under a second; on a miss it prints one line
# naming what is missing and the command that installs it, and exits 1.
# Usage: tools/prereq.sh [PYTHON]   (default python3)
py=${1:-python3}
say() { echo "make: $*" >&2; exit 1; }

command -v "$py" >/dev/null 2>&1 ||
  say "$py is not installed: apt-get install python3 python3-venv (Python 3.11 or newer)"
version=$("$py" --version 2>&1 | sed -n 's/^Python \([0-9][0-9.]*\).*/\1/p')
[ -n "$version" ] || say "$py --version does not say which Python it is: install Python 3.11 or newer"
major=${version%%.*}
rest=${version#*.}
minor=${rest%%.*}
if [ "$major" -lt 3 ] || { [ "$major" -eq 3 ] && [ "$minor" -lt 11 ]; }; then
  say "$py is Python $version; airshake needs 3.11 or newer:" \
      "apt-get install python3.11 python3.11-venv, then make PYTHON3=python3.11 (or python.org)"
fi
"$py" -c "import venv, ensurepip" >/dev/null 2>&1 ||
  say "$py (Python $version) has no venv module (ensurepip): apt-get install python3-venv" \
      "(or python$major.$minor-venv)"
exit 0
