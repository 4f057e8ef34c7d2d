#!/usr/bin/env bash
# Creates .venv and installs the project on a brand-new Debian machine; idempotent and quick when done.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
PY=${PYTHON:-python3}
if ! command -v "$PY" >/dev/null 2>&1; then need_apt+=(python3 python3-venv); fi
if command -v "$PY" >/dev/null 2>&1 && ! "$PY" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  echo "bootstrap: $PY is older than 3.11; install Python 3.11+ or set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if command -v "$PY" >/dev/null 2>&1 && ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then need_apt+=(python3-venv); fi
if [ "${CMDB_WITH_NEO4J:-0}" = 1 ]; then
  command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
fi
if [ "${CMDB_WITH_TEST_SERVERS:-0}" = 1 ]; then
  # Real peers for the discovery tests: net-snmp's agent and tools, OpenSSH's server.
  [ -x /usr/sbin/snmpd ] || need_apt+=(snmpd)
  command -v snmpbulkwalk >/dev/null 2>&1 || need_apt+=(snmp)
  [ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
  command -v ssh-keygen >/dev/null 2>&1 || need_apt+=(openssh-client)
  command -v nmap >/dev/null 2>&1 || need_apt+=(nmap)  # the nmap importer's test runs the real scanner
  # the deployment test validates docker-compose.yml with a compose client (no engine needed)
  command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || need_apt+=(docker-compose)
  [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "bootstrap: installing Debian packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  # policy-rc.d keeps the packages' own daemons (snmpd on :161, sshd on :22) from starting.
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d.cmdb >/dev/null
  if [ ! -e /usr/sbin/policy-rc.d ]; then $SUDO cp /usr/sbin/policy-rc.d.cmdb /usr/sbin/policy-rc.d; rm_policy=1; fi
  $SUDO chmod +x /usr/sbin/policy-rc.d 2>/dev/null || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
  if [ "${rm_policy:-0}" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
  $SUDO rm -f /usr/sbin/policy-rc.d.cmdb
fi

stamp=.venv/.installed
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
fi
if [ "${CMDB_WITH_TEST_SERVERS:-0}" = 1 ]; then
  # snmpsim runs from a venv of Debian's python3 that the unprivileged agent user can read.
  .venv/bin/python scripts/snmp_agents.py ensure-snmpsim >/dev/null
fi
