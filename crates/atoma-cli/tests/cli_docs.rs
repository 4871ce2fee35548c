//! docs/CLI.md must be exactly what `atoma docs cli` prints, so that it never drifts from the
//! help text. `UPDATE_CLI_DOCS=1 cargo test -p atoma-cli --test cli_docs` rewrites it.

use std::path::Path;
use std::process::Command;

#[test]
fn docs_cli_md_matches_the_help_text() {
    let out = Command::new(env!("CARGO_BIN_EXE_atoma")).args(["docs", "cli"]).output().expect("atoma runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let generated = String::from_utf8(out.stdout).expect("UTF-8");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/CLI.md");
    if std::env::var_os("UPDATE_CLI_DOCS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write docs/CLI.md");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/CLI.md is out of date with the CLI's help text; regenerate it with\n  \
         UPDATE_CLI_DOCS=1 cargo test -p atoma-cli --test cli_docs"
    );
}
