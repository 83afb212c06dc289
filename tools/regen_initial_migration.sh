#!/usr/bin/env bash
# Before the first release only: rewrite revision 0001 from the current tables.
set -euo pipefail
cd "$(dirname "$0")/.."
versions=okap_server/db/migrations/versions
rm -f "$versions"/*.py
python -m okap_server.db.new_revision "initial schema" >/dev/null
mv "$versions"/*_initial_schema.py "$versions/0001_initial_schema.py"
sed -i "s/^revision: str = .*/revision: str = '0001'/; s/^Revision ID: .*/Revision ID: 0001/; s/[[:space:]]*$//" "$versions/0001_initial_schema.py"
echo "rewrote $versions/0001_initial_schema.py"
