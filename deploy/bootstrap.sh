#!/usr/bin/env bash
# Installs what a purpose (demo | test | bench) needs and is missing: the Debian packages listed
# in deploy/system-packages.txt, then the project's virtual environment in .venv.
# Safe to run again: it checks first and installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
purpose="${1:-test}"
case "$purpose" in demo|test|bench) ;; *)
  echo "bootstrap: unknown purpose '$purpose' (use demo, test or bench)" >&2; exit 2;; esac

have() {  # a program on PATH, or in the sbin folders a non-root PATH may lack
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/lib/jvm/java-17-openjdk-amd64/bin/$1" ]
}

missing=()
while read -r program package purposes _; do
  case "$program" in ''|'#'*) continue;; esac
  [[ ",$purposes," == *",$purpose,"* ]] || continue
  have "$program" || missing+=("$package")
done < deploy/system-packages.txt

if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: '$purpose' needs these Debian packages (or your system's equivalent):" >&2
    echo "  ${missing[*]}" >&2
    echo "this machine has no apt-get: install them, then run the command again" >&2; exit 1
  fi
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=(sudo -n)
    else
      echo "bootstrap: '$purpose' needs these Debian packages, and installing them needs root:" >&2
      echo "  sudo apt-get install -y ${missing[*]}" >&2; exit 1
    fi
  fi
  echo "bootstrap: installing ${missing[*]} (for $purpose)"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
  # postfix's package starts a mail server where it can; flowmail needs only its tools
  if have postfix; then "${sudo[@]}" postfix stop >/dev/null 2>&1 || true; fi
  # redis-server's package may start a server on 6379; the peer harness starts its own
  if have redis-server && command -v service >/dev/null 2>&1; then
    "${sudo[@]}" service redis-server stop >/dev/null 2>&1 || true
  fi
fi

python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $($python --version 2>&1)"
  "$python" -m venv .venv
fi
if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
  echo "bootstrap: installing flowmail and its Python dependencies into .venv"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  touch .venv/.installed
fi
