//! The book stays true: the CLI outputs it shows are what the CLI prints
//! now, every link and include resolves, and every chapter is in SUMMARY.md.
//! (The chapters' Rust blocks run as doctests: see `src/book.rs`.)

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use s3_to_redshift::tutorial::{normalize, record};

fn cli(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_s3-to-redshift"))
        .args(["--config", "examples/pipeline.cfg"])
        .args(args)
        .env("S3_TO_REDSHIFT_DB_PASSWORD", "Book-Passw0rd")
        .stdin(Stdio::null())
        .output()
        .expect("run the CLI");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "s3-to-redshift {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The CLI chapter's outputs, from a real run of the demo's commands.
#[tokio::test]
async fn the_cli_chapter_shows_what_the_cli_prints() {
    common::require_sandbox();
    // Start from nothing, whatever an earlier run left.
    let _ = Command::new(env!("CARGO_BIN_EXE_s3-to-redshift"))
        .args([
            "--config",
            "examples/pipeline.cfg",
            "down",
            "--with-iam",
            "--yes",
        ])
        .stdin(Stdio::null())
        .output();
    let cfg = s3_to_redshift::config::Config::parse(
        &std::fs::read_to_string("examples/pipeline.cfg").unwrap(),
        "examples/pipeline.cfg",
        Some("Book-Passw0rd".into()),
    )
    .unwrap();
    let p = s3_to_redshift::Pipeline::connect(cfg).await.unwrap();
    s3_to_redshift::tutorial::upload_sample(&p).await.unwrap();

    for (key, args) in [
        ("cli-plan", &["plan"][..]),
        ("cli-up", &["up"]),
        ("cli-up-again", &["up"]),
        ("cli-load", &["load"]),
        ("cli-status", &["status"]),
        ("cli-down", &["down", "--with-iam", "--yes"]),
    ] {
        let printed = cli(args);
        record(key, printed.trim_end());
    }
}

#[test]
fn normalize_keeps_ordinary_text() {
    assert_eq!(normalize("10 rows loaded"), "10 rows loaded");
    assert_eq!(
        normalize("appended at 2026-11-24 20:06:22 UTC; 2024-01-03"),
        "appended at <time> UTC; 2024-01-03"
    );
}

fn chapters() -> Vec<(String, String)> {
    let dir = Path::new("book/src");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            out.push((name, std::fs::read_to_string(&path).unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn every_chapter_is_in_the_summary_and_every_link_resolves() {
    let summary = std::fs::read_to_string("book/src/SUMMARY.md").unwrap();
    let chapters = chapters();
    assert!(chapters.len() >= 12, "{}", chapters.len());
    for (name, text) in &chapters {
        if name != "SUMMARY.md" {
            assert!(
                summary.contains(&format!("({name})")),
                "{name} is not in SUMMARY.md"
            );
        }
        // Links to other chapters: `](file.md)` or `](file.md#anchor)`.
        for part in text.split("](").skip(1) {
            let target = part.split(')').next().unwrap();
            if target.starts_with("http") {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
            // A picture or other file beside the chapters.
            if !file.ends_with(".md") {
                assert!(
                    Path::new("book/src").join(file).is_file(),
                    "{name} links to missing {file}"
                );
                continue;
            }
            let linked = chapters.iter().find(|(n, _)| n == file);
            let (_, linked_text) =
                linked.unwrap_or_else(|| panic!("{name} links to missing {target}"));
            if !anchor.is_empty() {
                let heading = anchor.replace('-', " ");
                assert!(
                    linked_text.lines().any(|l| l.starts_with('#')
                        && l.trim_start_matches('#')
                            .trim()
                            .to_lowercase()
                            .replace(['"', '\''], "")
                            == heading),
                    "{name} links to {target}, but {file} has no such heading"
                );
            }
        }
        // Includes must exist.
        for part in text.split("{{#include ").skip(1) {
            let target = part.split("}}").next().unwrap().trim();
            let (file, anchor) = target.split_once(':').unwrap_or((target, ""));
            let path = Path::new("book/src").join(file);
            assert!(path.exists(), "{name} includes missing {file}");
            if !anchor.is_empty() {
                let text = std::fs::read_to_string(&path).unwrap();
                assert!(
                    text.contains(&format!("ANCHOR: {anchor}\n"))
                        && text.contains(&format!("ANCHOR_END: {anchor}\n")),
                    "{name} includes anchor `{anchor}`, which {file} does not have"
                );
            }
        }
    }
}

/// The text between `ANCHOR: name` and `ANCHOR_END: name` in `file`, as
/// mdBook's `{{#include file:name}}` takes it (the anchor lines left out).
fn anchored(file: &Path, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let start = text.find(&format!("ANCHOR: {name}\n"))?;
    let end = text.find(&format!("ANCHOR_END: {name}\n"))?;
    let body = &text[start..end];
    let body = body.split_once('\n')?.1;
    Some(
        body.lines()
            .filter(|l| !l.contains("ANCHOR"))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

#[test]
fn every_rust_block_of_the_book_is_run() {
    // rustdoc runs ```rust blocks; a block marked to be skipped would be a
    // snippet shown but never run. The one exception is a listing of the
    // library's own code, `{{#include ../../src/FILE:ANCHOR}}` alone in a
    // `rust,ignore` block: rustdoc cannot compile the include line, and the
    // code is compiled, linted and tested as part of the library, and called
    // by the chapter's next blocks.
    for (name, text) in chapters() {
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            let fence = line.trim();
            if ["```rust,ignore", "```ignore"].contains(&fence) {
                let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
                let listing = body
                    .first()
                    .and_then(|l| l.strip_prefix("{{#include ../../"))
                    .and_then(|l| l.strip_suffix("}}"))
                    .filter(|_| body.len() == 1);
                let Some(listing) = listing else {
                    panic!("{name} has a block that does not run: {body:?}");
                };
                let (file, anchor) = listing.split_once(':').unwrap_or_else(|| {
                    panic!("{name}: {listing} includes a whole file, not an anchor")
                });
                assert!(
                    file.starts_with("src/") || file.starts_with("examples/"),
                    "{name}: {listing} is not the project's compiled code"
                );
                let code = anchored(Path::new(file), anchor)
                    .unwrap_or_else(|| panic!("{name}: {file} has no anchor `{anchor}`"));
                assert!(
                    code.lines().count() >= 3,
                    "{name}: anchor {listing} is nearly empty"
                );
            }
            assert!(
                !fence.starts_with("```rust,no_run") && fence != "```no_run",
                "{name} has a block that does not run ({fence})"
            );
        }
        // Fences without a language are Rust to rustdoc; say what they are.
        let mut in_block = false;
        for line in text.lines() {
            if line.starts_with("```") {
                if !in_block && line.trim() == "```" {
                    panic!("{name} has a fence without a language");
                }
                in_block = !in_block;
            }
        }
    }
    let book_rs = std::fs::read_to_string("src/book.rs").unwrap();
    for (name, _) in chapters() {
        if name != "SUMMARY.md" {
            assert!(
                book_rs.contains(&format!("book/src/{name}")),
                "src/book.rs does not include {name}"
            );
        }
    }
}

#[test]
fn no_printed_output_of_the_book_or_the_notebook_shows_a_secret() {
    // The outputs are recorded from real runs with this password set; the
    // notebook's outputs come from the same code. Neither may show it.
    let password = s3_to_redshift::tutorial::PASSWORD;
    let mut checked = 0;
    for entry in std::fs::read_dir("book/src/generated").unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains(password),
            "{} shows the password",
            path.display()
        );
        checked += 1;
    }
    assert!(checked > 10, "the recorded outputs are there: {checked}");
    let notebook = std::fs::read_to_string("notebooks/s3-to-redshift.ipynb").unwrap();
    // The notebook's source may set the variable; its outputs may not show it.
    let doc: serde_json::Value = serde_json::from_str(&notebook).unwrap();
    let outputs = doc["cells"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.get("outputs"))
        .map(|o| o.to_string())
        .collect::<String>();
    assert!(
        outputs.len() > 1000,
        "the notebook is committed with its outputs"
    );
    assert!(
        !outputs.contains(password),
        "a notebook output shows the password"
    );
    for example in ["examples/pipeline.cfg", "examples/dwh.cfg"] {
        let text = std::fs::read_to_string(example).unwrap();
        for line in text.lines().filter(|l| !l.trim_start().starts_with(';')) {
            let (key, value) = line.split_once('=').unwrap_or((line, ""));
            let key = key.trim().to_ascii_uppercase();
            if key.contains("PASSWORD") || key == "SECRET" {
                assert!(value.trim().is_empty(), "{example} holds a secret in {key}");
            }
        }
    }
}

/// The step chapters show the SDK calls a reader copies, each from an
/// include of compiled code (the issue's list, in the pipeline's order).
#[test]
fn the_step_chapters_show_each_sdk_call_from_compiled_code() {
    let steps = [
        "setup.md",
        "iam-role.md",
        "s3-policy.md",
        "cluster.md",
        "table.md",
        "copy.md",
        "verify.md",
        "teardown.md",
    ];
    let mut shown = String::new();
    for chapter in steps {
        let text = std::fs::read_to_string(Path::new("book/src").join(chapter)).unwrap();
        for part in text.split("{{#include ../../").skip(1) {
            let target = part.split("}}").next().unwrap();
            if let Some((file, anchor)) = target.split_once(':') {
                shown += &anchored(Path::new(file), anchor).unwrap();
            }
        }
    }
    for call in [
        "create_role",
        "create_policy",
        "attach_role_policy",
        "create_cluster",
        "describe_clusters",
        "execute_statement",
        "describe_statement",
        "get_statement_result",
        "delete_cluster",
        "batch_execute_statement",
        "get_caller_identity",
    ] {
        assert!(
            shown.contains(&format!(".{call}()")),
            "no step chapter shows the SDK call `.{call}()` from an included listing"
        );
    }
    assert!(shown.contains(".send()") && shown.contains(".await"));
    assert!(
        shown.contains("is_no_such_entity_exception()"),
        "which error means absent"
    );
    assert!(shown.contains("is_entity_already_exists_exception()"));
    assert!(shown.contains("is_cluster_not_found_fault()"));
}

/// The committed notebook is one run: no cell renames the config for a
/// chapter (so one role, one policy, one cluster throughout), no recorded
/// output is pasted into its prose (each output appears once, live), and
/// every link leads somewhere that exists.
#[test]
fn the_notebook_is_one_run_with_each_output_once_and_no_broken_link() {
    let text = std::fs::read_to_string("notebooks/s3-to-redshift.ipynb").unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cells = doc["cells"].as_array().unwrap();
    let source = |c: &serde_json::Value| match &c["source"] {
        serde_json::Value::String(s) => s.clone(),
        v => v
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect(),
    };
    let code: Vec<String> = cells
        .iter()
        .filter(|c| c["cell_type"] == "code")
        .map(source)
        .collect();
    let prose: Vec<String> = cells
        .iter()
        .filter(|c| c["cell_type"] == "markdown")
        .map(source)
        .collect();
    assert!(code.len() > 20, "{} code cells", code.len());
    for cell in &code {
        for per_chapter in [
            "tutorial::config",
            "tutorial::start",
            "tutorial::ready",
            "resource_name",
        ] {
            assert!(
                !cell.contains(per_chapter),
                "a cell uses {per_chapter}:\n{cell}"
            );
        }
    }
    // One config, loaded once; the teardown is the last code cell.
    assert_eq!(
        code.iter().filter(|c| c.contains("Config::load(")).count(),
        1
    );
    assert!(
        code.last().unwrap().contains("delete_cluster("),
        "the last cell tears down"
    );
    for entry in std::fs::read_dir("book/src/generated").unwrap() {
        let recorded = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let first = recorded.lines().next().unwrap_or_default();
        if first.len() > 30 {
            for p in &prose {
                assert!(
                    !p.contains(first),
                    "a recorded output is pasted into the prose: {first}"
                );
            }
        }
    }
    for p in &prose {
        assert!(!p.contains("{{#"), "an include is left in the prose");
        for part in p.split("](").skip(1) {
            let target = part.split(')').next().unwrap();
            if target.starts_with("http") || target.starts_with('#') {
                continue;
            }
            let file = target.split('#').next().unwrap();
            assert!(
                Path::new("notebooks").join(file).exists(),
                "the notebook links to {target}, which does not exist"
            );
        }
    }
}
