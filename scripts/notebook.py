#!/usr/bin/env python3
"""Builds notebooks/s3-to-redshift.ipynb from the book, and checks a run of it.

The notebook is the classic tutorial (Introduction, Setting up, steps 1 to
7) as ONE run: one config, one set of SDK clients, one role, policy, cluster
and table, with the values a step produces (the role's ARN, the cluster,
the statement ids, the row count) carried to the next cells in ordinary
variables. The book's chapters are the one source:

- prose becomes markdown cells; links to chapters point at the chapters'
  files in the repository; a recorded output (`{{#include generated/…}}`)
  is left out, since the cell above it prints the same thing live;
- a listing of the library's code (`{{#include ../../src/FILE:ANCHOR}}`)
  becomes a cell that *defines* that function, for the reader to edit and
  run again; later cells call it (a method, which a cell cannot define, is
  shown as text: the cell after it runs it);
- a Rust block becomes a cell with the block's visible lines only. Its
  hidden `# ` lines are the doctest's own set-up (a config renamed for the
  chapter, the earlier steps redone), which the notebook does not need: its
  earlier cells did that. The cell runs as one async block on the
  library's runtime (see `tutorial::block_on`), and hands back the
  variables that a hidden `# // The notebook keeps: a: A, b: B` line names
  (evcxr keeps a variable only if it knows its type), for the later cells.

A block whose hidden lines say `// Not in the notebook` stays in the book.

Usage:
  notebook.py generate            write the notebook (no outputs)
  notebook.py check-current NB    fail if NB's cells differ from the book
  notebook.py twice NB OUT        write NB with every code cell run twice
                                  in a row (each cell must be safe to re-run)
  notebook.py check-run NB        fail if an executed NB shows an error
"""

import json
import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book" / "src"
OUT = ROOT / "notebooks" / "s3-to-redshift.ipynb"

CHAPTERS = [
    "introduction.md", "setup.md", "iam-role.md", "s3-policy.md", "cluster.md",
    "table.md", "copy.md", "verify.md", "teardown.md",
]

PRE_CELL = """\
// How evcxr compiles: no optimisation (each later cell compiles in about
// 3 s instead of 8; the SDK's speed does not matter where every call waits
// on the network), and a cache of what it compiled, kept between kernels.
:opt 0
:cache 4000
// evcxr compiles a whole cell before it runs any of it, so the next cell
// cannot say while it compiles how long it will take: this one says it.
{
    fn size(p: &std::path::Path) -> u64 {
        let Ok(entries) = std::fs::read_dir(p) else { return 0 };
        entries.flatten().map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        }).sum()
    }
    let home = std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default());
    let caches = [
        std::env::var_os("XDG_CACHE_HOME").map(std::path::PathBuf::from).unwrap_or(home.join(".cache")),
        home.join("Library/Caches"),
    ];
    let mb = caches.iter().map(|c| size(&c.join("evcxr"))).sum::<u64>() >> 20;
    if mb > 500 {
        println!("evcxr's cache holds {mb} MB: the next cell should take about a minute or less");
    } else {
        println!("evcxr's cache is empty: the next cell compiles the AWS SDK, about 2 minutes on 2 cores");
    }
}"""

FIRST_CELL = """\
// Compiles this repository's library, and with it the AWS SDK for Rust,
// into the kernel (the cell above said how long it should take). Start the
// local stack first, in the shell that starts Jupyter:
//     eval "$(scripts/sandbox.sh start)"
// Nothing below reaches a real AWS account unless you set
// S3_TO_REDSHIFT_TUTORIAL_ON_AWS=1 (see the book's "On AWS" page).
:preserve_vars_on_panic 1
:dep s3-to-redshift = { path = ".." }
// The SDK crates, at the versions the library uses.
use s3_to_redshift::{aws_config, aws_sdk_iam, aws_sdk_redshift, aws_sdk_redshiftdata, aws_sdk_s3, aws_sdk_sts};
use s3_to_redshift::{serde_json, tokio, tracing};
// The library's step functions, which the cells below redefine or call.
use s3_to_redshift::{aws::*, cluster::*, config::*, iam::*, load::*, report::*, wait::*, warehouse::*};
use s3_to_redshift::{tutorial::block_on, Error, Result};

// Where the requests go; refuses a real account you did not opt in to.
match s3_to_redshift::tutorial::notebook_start() {
    Ok(destination) => println!("requests go to {destination}"),
    Err(e) => panic!("{e}"),
}
println!("working in {}", std::env::current_dir().unwrap().display());"""

LAST_CELL = """## Next steps

That was the whole pipeline, and everything it made is gone. The book
goes further: [your own project](../book/src/own-project.md) (the
`Cargo.toml` and a complete program), [the command-line
tool](../book/src/cli.md), [load modes](../book/src/load-modes.md),
[formats](../book/src/formats.md), [staging at
scale](../book/src/stage.md) and [Redshift
Serverless](../book/src/serverless.md). Read it with `scripts/book.sh serve`."""


def links(text):
    """Relative links to the book's pages and pictures, seen from notebooks/."""
    def repl(m):
        target = m.group(1)
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            return m.group(0)
        return "](../book/src/" + target + ")"
    return re.sub(r"\]\(([^)\s]+)\)", repl, text)


def anchored(path, name):
    text = path.read_text()
    start = text.index(f"ANCHOR: {name}\n")
    end = text.index(f"ANCHOR_END: {name}\n")
    end = text.rindex("\n", 0, end)
    body = text[start:end].split("\n", 1)[1]
    lines = [l for l in body.splitlines() if "ANCHOR" not in l]
    return "\n".join(lines).rstrip()


def listing_cell(target):
    """A cell defining the listed function, or None for a method."""
    file, name = target.split(":")
    path = (BOOK / file).resolve()
    code = anchored(path, name)
    first = next(l for l in code.splitlines() if not l.lstrip().startswith("///"))
    rel = path.relative_to(ROOT)
    if first.startswith(" "):
        # A method: a cell cannot define one for the library's type, so the
        # code is shown; the cells call the library's own.
        return ("markdown", f"From `{rel}`, the method the cells call:\n\n"
                f"```rust\n{textwrap.dedent(code)}\n```")
    code = code.replace("crate::", "s3_to_redshift::")
    head = (f"// From {rel}: edit this cell and run it again to change the step;\n"
            f"// the cells below call this function.\n")
    return ("code", head + code, {"tags": ["definition"]})


KEEPS = re.compile(r"^# // The notebook keeps: (.+)$")


def runnable(block):
    """The visible lines of a book block, and the variables the notebook
    keeps for later cells (a hidden `# // The notebook keeps: a, b` line)."""
    visible, kept = [], []
    for line in block.splitlines():
        m = KEEPS.match(line)
        if m:
            # `name: Type`: evcxr keeps a variable only if it knows its type.
            kept = [tuple(p.strip() for p in n.split(":", 1)) for n in m.group(1).split(",")]
        if line == "#" or line.startswith("# "):
            continue
        visible.append(line)
    while visible and not visible[-1].strip():
        visible.pop()
    while visible and not visible[0].strip():
        visible.pop(0)
    return visible, kept


CLIENTS = """\
// evcxr compiles every cell on its own, and an SDK client belongs to the
// async runtime of the cell that made it: each cell makes its own (cheap,
// and nothing is sent until a call).
let clients = Clients::new(&cfg).await?;
"""


def wrap(visible, carried):
    uses_clients = any("clients." in l for l in visible)
    makes_clients = any(l.startswith("let clients") for l in visible)
    if uses_clients and not makes_clients:
        visible = CLIENTS.splitlines() + visible
    body = "\n".join(("    " + l) if l.strip() else "" for l in visible)
    if not carried:
        out, bind = "()", "block_on(async {\n"
    elif len(carried) == 1:
        (name, ty), = carried
        out, bind = name, f"let {name}: {ty} = block_on(async {{\n"
    else:
        names = ", ".join(n for n, _ in carried)
        types = ", ".join(t for _, t in carried)
        out, bind = f"({names})", f"let ({names}): ({types}) = block_on(async {{\n"
    return bind + body + f"\n    Ok::<_, s3_to_redshift::tutorial::BoxError>({out})\n}});"


def split(markdown):
    """The chapter as parts: ("markdown", text), ("listing", target) and
    ("rust", block), in order."""
    parts, prose = [], []
    lines = markdown.splitlines()
    i = 0

    def flush():
        text = "\n".join(prose).strip("\n")
        if text.strip():
            parts.append(("markdown", text))
        prose.clear()

    while i < len(lines):
        fence = lines[i].strip()
        if fence.startswith("```") and fence != "```":
            j = i + 1
            while lines[j].strip() != "```":
                j += 1
            body = "\n".join(lines[i + 1:j])
            include = re.fullmatch(r"\{\{#include ([^}]+)\}\}", body.strip())
            if fence in ("```rust,ignore", "```ignore") and include:
                flush()
                parts.append(("listing", include.group(1).strip()))
            elif fence == "```rust":
                flush()
                parts.append(("rust", body))
            elif include and include.group(1).strip().startswith("generated/"):
                pass  # a recorded output: the cell above prints it live
            elif include:
                text = (BOOK / include.group(1).strip()).read_text().rstrip("\n")
                prose.extend([lines[i], text, "```"])
            else:
                prose.extend(lines[i:j + 1])
            i = j + 1
            continue
        prose.append(lines[i])
        i += 1
    flush()
    return parts


def build_cells():
    parts = []
    for chapter in CHAPTERS:
        parts.extend(split((BOOK / chapter).read_text()))
    # Rust blocks that stay in the book.
    kept = []
    for kind, value in parts:
        if kind == "rust" and "// Not in the notebook" in value:
            kept.append(("markdown", "*(The book runs an example here that replaces "
                         "the data with a bad file; it is left out of this one run.)*"))
        else:
            kept.append((kind, value))
    cells = [
        ("markdown", "# From S3 to Redshift with Rust\n\n"
         "The book's tutorial as one run, from an empty account to the loaded "
         "rows and back. Generated from the book (`book/src`) by "
         "`scripts/notebook.py`: edit the book, not this notebook. Each cell "
         "runs against the local stack by default, with the Rust kernel "
         "[evcxr](https://github.com/evcxr/evcxr); run them in order."),
        ("code", PRE_CELL),
        ("code", FIRST_CELL),
    ]
    for n, (kind, value) in enumerate(kept):
        if kind == "markdown":
            cells.append(("markdown", links(value)))
        elif kind == "listing":
            cells.append(listing_cell(value))
        else:
            visible, carried = runnable(value)
            cells.append(("code", wrap(visible, carried)))
    cells.append(("markdown", LAST_CELL))
    return cells


def build():
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
    for n, cell in enumerate(build_cells()):
        kind, source = cell[0], cell[1]
        meta = cell[2] if len(cell) > 2 else {}
        out = {"cell_type": kind, "id": f"cell-{n:03d}", "metadata": meta, "source": source}
        if kind == "code":
            out["execution_count"] = None
            out["outputs"] = []
        nb["cells"].append(out)
    return nb


def sources(nb):
    return [(c["cell_type"], "".join(c["source"]) if isinstance(c["source"], list) else c["source"])
            for c in nb["cells"]]


def check_run(path):
    nb = json.loads(Path(path).read_text())
    problems = []
    for n, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        stderr, stdout = "", ""
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                problems.append(f"cell {n}: {o.get('ename')}: {o.get('evalue')}")
            body = o.get("text") or "".join(o.get("data", {}).get("text/plain", ""))
            body = "".join(body) if isinstance(body, list) else body
            if o.get("name") == "stderr":
                stderr += body
            else:
                stdout += body
        if re.search(r"panicked|^Error|error(\[E\d+\])?:|Segmentation fault", stderr + stdout, re.M):
            problems.append(f"cell {n} reported an error:\n{stderr}{stdout}")
        # A definition prints nothing when it compiles; any other cell must
        # show what it did, or an error may have been swallowed.
        definition = "definition" in cell.get("metadata", {}).get("tags", [])
        if not definition and not stdout.strip():
            problems.append(f"cell {n} showed nothing:\n{''.join(cell['source'])[:200]}")
    if problems:
        sys.exit("the notebook run failed:\n" + "\n".join(problems))
    print(f"all {sum(c['cell_type'] == 'code' for c in nb['cells'])} code cells ran")


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else "generate"
    if cmd == "generate":
        OUT.parent.mkdir(exist_ok=True)
        OUT.write_text(json.dumps(build(), indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {OUT.relative_to(ROOT)}")
    elif cmd == "check-current":
        committed = json.loads(Path(sys.argv[2]).read_text())
        if sources(committed) != sources(build()):
            sys.exit(f"{sys.argv[2]} is out of date with the book: run scripts/notebook.sh --update and commit it")
        print("the notebook matches the book")
    elif cmd == "twice":
        nb = json.loads(Path(sys.argv[2]).read_text())
        cells = []
        for cell in nb["cells"]:
            cells.append(cell)
            if cell["cell_type"] == "code":
                again = json.loads(json.dumps(cell))
                again["id"] = cell["id"] + "-again"
                cells.append(again)
        nb["cells"] = cells
        Path(sys.argv[3]).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    elif cmd == "check-run":
        check_run(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
