#!/usr/bin/env bash
# Builds the book with mdBook (installed from crates.io when missing) and
# fails on any warning. `scripts/book.sh serve` serves it on
# http://127.0.0.1:3000 and rebuilds on change.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

MDBOOK_VERSION=0.5.4
if ! command -v mdbook >/dev/null || [ "$(mdbook --version | awk '{print $2}')" != "v$MDBOOK_VERSION" ]; then
  log "installing mdbook $MDBOOK_VERSION (a few minutes, once)"
  cargo install mdbook --locked --version "$MDBOOK_VERSION" --quiet
fi

if [ "${1:-}" = serve ]; then
  exec mdbook serve book --hostname 127.0.0.1 --port 3000
fi
out=$(mdbook build book 2>&1) || { echo "$out" >&2; die "mdbook build failed"; }
echo "$out" >&2
if echo "$out" | grep -E -q "WARN|ERROR"; then
  die "mdbook build printed warnings"
fi
log "the book is in book/build/index.html"
