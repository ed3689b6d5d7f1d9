#!/usr/bin/env python3
"""Builds notebooks/s3-to-redshift.ipynb from the book, and checks a run of it.

The book's chapters are the one source: prose becomes markdown cells, each
```rust block a code cell for the evcxr Rust kernel. The blocks are written
as rustdoc doctests, so they are adapted for a notebook:

- the `#[tokio::main] async fn main() { ... Ok(()) }` wrapper becomes
  `tutorial::block_on(async { ... })`, one runtime for all cells;
- lines that only serve the tests (`tutorial::record(...)`) are dropped;
- other hidden `# ` set-up lines are shown, since the cell needs them.

`{{#include file}}` is replaced by the file's text, so the notebook shows the
configs and the recorded outputs too.

Usage:
  notebook.py generate            write the notebook (no outputs)
  notebook.py check-current NB    fail if NB's cells differ from the book
  notebook.py check-run NB        fail if an executed NB shows an error
"""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book" / "src"
OUT = ROOT / "notebooks" / "s3-to-redshift.ipynb"

FIRST_CELL = """\
// The first cell compiles the s3-to-redshift crate and the AWS SDK for Rust
// into the kernel: expect a few minutes the first time (about 4 on a 2-core
// machine), seconds afterwards thanks to the cache. Start the local stack
// first, in the shell that starts Jupyter:
//     eval "$(scripts/sandbox.sh start)"
//     jupyter lab notebooks/
:cache 2000
:preserve_vars_on_panic 0
:dep s3-to-redshift = { path = ".." }
:dep tokio = { version = "1", features = ["rt-multi-thread", "macros", "time"] }
:dep serde_json = "1"
:dep anyhow = "1"
// The examples read files relative to the repository's root.
std::env::set_current_dir("..").unwrap();
println!("ready: {}", std::env::current_dir().unwrap().display());
"""


def chapters():
    summary = (BOOK / "SUMMARY.md").read_text()
    return re.findall(r"\]\(([^)]+\.md)\)", summary)


def include(text, base):
    def repl(m):
        return (base / m.group(1).strip()).read_text().rstrip("\n")
    return re.sub(r"\{\{#include ([^}]+)\}\}", repl, text)


WRAPPER = [
    re.compile(r"^#\s*#\[tokio::main.*\]\s*$"),
    re.compile(r"^#\s*async fn main\(\).*\{\s*$"),
    re.compile(r"^#\s*Ok\(\(\)\)\s*$"),
    re.compile(r"^#\s*Ok::<.*>\(\(\)\)\s*$"),
    re.compile(r"^#\s*\}\s*$"),
]


def cell_source(block):
    lines = []
    for line in block.splitlines():
        if any(p.match(line) for p in WRAPPER):
            continue
        if "tutorial::record(" in line or line.lstrip().startswith("# assert"):
            continue
        if line == "#":
            line = ""
        elif line.startswith("# "):
            line = line[2:]
        lines.append(line)
    while lines and not lines[-1].strip():
        lines.pop()
    # Each block in the book stands alone, so each cell runs as one async
    # block on the library's runtime (see `tutorial::block_on` for why not
    # evcxr's own `.await`): it keeps no variable, and none of its borrows
    # has to outlive the cell.
    body = "\n".join(("    " + l) if l.strip() else "" for l in lines)
    return (
        "s3_to_redshift::tutorial::block_on(async {\n"
        + body
        + "\n    Ok::<(), s3_to_redshift::tutorial::BoxError>(())\n});"
    )


def split(markdown):
    """Yields ("markdown", text) and ("code", text) parts in order."""
    parts = []
    prose = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == "```rust":
            j = i + 1
            while lines[j].strip() != "```":
                j += 1
            if "".join(prose).strip():
                parts.append(("markdown", "\n".join(prose).strip("\n")))
            prose = []
            parts.append(("code", cell_source("\n".join(lines[i + 1 : j]))))
            i = j + 1
            continue
        prose.append(line)
        i += 1
    if "".join(prose).strip():
        parts.append(("markdown", "\n".join(prose).strip("\n")))
    return parts


def build():
    cells = [
        ("markdown", "# From S3 to Redshift with Rust\n\n"
         "This notebook is generated from the book in `book/src` by "
         "`scripts/notebook.py`: edit the book, not the notebook. Each section "
         "is a chapter; each code cell runs against the local stack (or AWS) "
         "with the Rust kernel, [evcxr](https://github.com/evcxr/evcxr)."),
        ("code", FIRST_CELL.rstrip("\n")),
    ]
    for chapter in chapters():
        text = include((BOOK / chapter).read_text(), BOOK)
        cells.extend(split(text))
    nb = {
        "cells": [],
        "metadata": {
            "kernelspec": {"display_name": "Rust", "language": "rust", "name": "rust"},
            "language_info": {
                "codemirror_mode": "rust",
                "file_extension": ".rs",
                "mimetype": "text/rust",
                "name": "Rust",
                "pygment_lexer": "rust",
                "version": "",
            },
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    for n, (kind, source) in enumerate(cells):
        cell = {"cell_type": kind, "id": f"cell-{n:03d}", "metadata": {}, "source": source}
        if kind == "code":
            cell["execution_count"] = None
            cell["outputs"] = []
        nb["cells"].append(cell)
    return nb


def sources(nb):
    return [(c["cell_type"], "".join(c["source"]) if isinstance(c["source"], list) else c["source"]) for c in nb["cells"]]


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else "generate"
    if cmd == "generate":
        OUT.parent.mkdir(exist_ok=True)
        OUT.write_text(json.dumps(build(), indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {OUT.relative_to(ROOT)}")
    elif cmd == "check-current":
        committed = json.loads(Path(sys.argv[2]).read_text())
        if sources(committed) != sources(build()):
            sys.exit(f"{sys.argv[2]} is out of date with the book: run scripts/notebook.sh and commit it")
        print("the notebook matches the book")
    elif cmd == "check-run":
        nb = json.loads(Path(sys.argv[2]).read_text())
        problems = []
        for n, cell in enumerate(nb["cells"]):
            if cell["cell_type"] != "code":
                continue
            outputs = cell.get("outputs", [])
            text = ""
            stdout = ""
            for o in outputs:
                if o.get("output_type") == "error":
                    problems.append(f"cell {n}: {o.get('ename')}: {o.get('evalue')}")
                body = o.get("text") or "".join(o.get("data", {}).get("text/plain", ""))
                body = "".join(body) if isinstance(body, list) else body
                if o.get("name") == "stderr":
                    text += body
                else:
                    stdout += body
            if re.search(r"panicked|^Error|error\[E\d+\]|Segmentation fault", text, re.M):
                problems.append(f"cell {n} reported an error:\n{text}")
            if not stdout.strip():
                problems.append(f"cell {n} showed nothing (an error may have been swallowed):\n{''.join(cell['source'])[:200]}")
        if problems:
            sys.exit("the notebook run failed:\n" + "\n".join(problems))
        print(f"all {sum(c['cell_type'] == 'code' for c in nb['cells'])} code cells ran and showed their output")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
