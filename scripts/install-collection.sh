#!/usr/bin/env bash
# Builds the collection tarball from this checkout and installs it into .collections/, so every run
# exercises what `ansible-galaxy collection install` would put on a user's machine.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/.venv/bin"
out="$top/build/dist"
mkdir -p "$out" "$top/.collections" "$top/build/collections/ansible_collections/zerotouch"
# Importable from the checkout too (unit tests, benchmarks): build/collections/ansible_collections/zerotouch/selfheal.
ln -sfn ../../../.. "$top/build/collections/ansible_collections/zerotouch/selfheal"
rm -f "$out"/*.tar.gz
"$bin/ansible-galaxy" collection build --force --output-path "$out" "$top" >/dev/null
"$bin/ansible-galaxy" collection install --force -p "$top/.collections" "$out"/zerotouch-selfheal-*.tar.gz >/dev/null
echo "installed $(basename "$out"/zerotouch-selfheal-*.tar.gz) into .collections/"
