#!/usr/bin/env bash
# The notebook: generated from the book, executed top to bottom with the
# evcxr Rust kernel against the local stack, and checked.
#   scripts/notebook.sh            check: the committed notebook matches the
#                                  book, and a fresh run of it, every cell
#                                  twice in a row, has no error
#   scripts/notebook.sh --update   regenerate, run, and write the notebook
#                                  with its outputs into notebooks/
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

"$ROOT/scripts/setup.sh" moto
if ! command -v evcxr_jupyter >/dev/null; then
  log "installing evcxr_jupyter (about 9 minutes, once)"
  cargo install evcxr_jupyter --locked --quiet
fi
# Without rust-src, evcxr cannot carry variables from one cell to the next.
rustup component add rust-src >/dev/null 2>&1 || log "warning: could not add rust-src"
if [ ! -x "$ROOT/.venv/bin/jupyter" ] || ! "$ROOT/.venv/bin/python" -c "import nbclient, nbconvert, ipykernel" 2>/dev/null; then
  log "installing the Jupyter pieces into .venv"
  "$ROOT/.venv/bin/pip" install --quiet --disable-pip-version-check nbclient nbconvert ipykernel nbformat
fi
export PATH="$ROOT/.venv/bin:$PATH"
evcxr_jupyter --install >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
committed="$ROOT/notebooks/s3-to-redshift.ipynb"
if [ "${1:-}" = --update ]; then
  python3 scripts/notebook.py generate
else
  python3 scripts/notebook.py check-current "$committed"
fi
if [ "${1:-}" = --update ]; then
  cp "$committed" "$work/run.ipynb"
else
  # The check runs every cell twice in a row: running a cell again (after
  # an edit, or by mistake) must work as well as the first time.
  python3 scripts/notebook.py twice "$committed" "$work/run.ipynb"
fi
# The kernel must run from notebooks/ so that `:dep { path = ".." }` and the
# examples' relative paths resolve as they do for a reader.
cp "$work/run.ipynb" "$ROOT/notebooks/.run.ipynb"

use_stack
log "executing the notebook (the first cell compiles the crate into the kernel)"
start=$(date +%s)
jupyter nbconvert --to notebook --execute \
  --ExecutePreprocessor.kernel_name=rust \
  --ExecutePreprocessor.timeout=1200 \
  --ExecutePreprocessor.allow_errors=True \
  --output-dir "$work" --output executed "$ROOT/notebooks/.run.ipynb"
end=$(date +%s)
rm -f "$ROOT/notebooks/.run.ipynb"
if ! python3 scripts/notebook.py check-run "$work/executed.ipynb"; then
  kept="${TMPDIR:-/tmp}/s3-to-redshift-notebook-failed.ipynb"
  cp "$work/executed.ipynb" "$kept"
  die "the executed notebook, with every cell's output, is in $kept"
fi
python3 - "$work/executed.ipynb" "$((end - start))" <<'PY'
import json, sys
from datetime import datetime
nb = json.load(open(sys.argv[1]))
def secs(cell):
    t = cell.get("metadata", {}).get("execution", {})
    a, b = t.get("iopub.execute_input"), t.get("shell.execute_reply")
    if not (a and b):
        return None
    p = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
    return (p(b) - p(a)).total_seconds()
code = [c for c in nb["cells"] if c["cell_type"] == "code"]
times = [secs(c) for c in code]
for i, (c, t) in enumerate(zip(code, times), 1):
    src = c["source"]
    lines = src.splitlines() if isinstance(src, str) else src
    line = next((l.strip() for l in lines if l.strip() and not l.startswith("//")), "")
    print(f"  cell {i:2}: {t:6.1f} s  {line[:60]}" if t is not None else f"  cell {i:2}: no timing")
# The cell that compiles the crate (`:dep`), and the ones after it.
dep = next(i for i, c in enumerate(code) if ":dep " in "".join(c["source"]))
first = times[dep]
later = [t for t in times[dep + 1:] if t is not None]
print(f"cell {dep + 1} (compiling the crate into the kernel): {first:.0f} s" if first else "first cell: no timing")
if later:
    print(f"later cells: {sum(later) / len(later):.1f} s on average ({len(later)} cells, {sum(later):.0f} s)")
print(f"whole notebook: {sys.argv[2]} s for {len(code)} code cells")
PY
if [ "${1:-}" = --update ]; then
  cp "$work/executed.ipynb" "$committed"
  log "wrote $committed with its outputs"
fi
