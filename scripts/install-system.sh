#!/usr/bin/env bash
# Installs the system packages the sandbox, ansible-rulebook and the tests need, only when they are missing.
set -euo pipefail

missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
# ansible-rulebook's Drools engine needs a Java 17 runtime (JAVA_HOME is set by the Makefile).
[ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ] || missing+=(openjdk-17-jre-headless)
command -v rsync >/dev/null 2>&1 || missing+=(rsync)
# The journal's PostgreSQL backend is tested against a real server (sandbox/postgres.py runs its own instance).
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)
# The review's test renders its HTML in headless Chromium (and so can a person look at it without a network).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing system packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
# apt-cache knows nothing before the first update (a fresh image): update once, then install.
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts the packaged services; the sandbox runs its own instances on free loopback ports.
for svc in prometheus prometheus-alertmanager prometheus-node-exporter postgresql; do
  $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
pkill -x prometheus-node-exporter 2>/dev/null || true
