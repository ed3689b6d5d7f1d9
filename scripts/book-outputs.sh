#!/usr/bin/env bash
# Re-records the outputs the book shows (book/src/generated/*.txt) from real
# runs against the local stack: the chapters' doctests and the CLI chapter's
# commands. Review the diff and commit it; the normal test run fails while
# the book shows output the code no longer prints.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
use_stack
export BOOK_RECORD=1
cargo test --locked -p s3-to-redshift --doc book
cargo test --locked -p s3-to-redshift --test faults
cargo test --locked -p s3-to-redshift --test book
git status --short book/src/generated
