//! Where results go: one JSON document on stdout with `--json`, readable text otherwise.
//!
//! Every command builds a [`Report`]: the JSON document and the text for people, side by side,
//! so the two can never describe different things. Notes (progress, hints) go to stderr and
//! never mix with the document on stdout. Errors print as `NAME (CODE): message` on stderr, or
//! as `{"error": {…}}` on stdout with `--json`.

use std::io::Write;

use serde_json::Value;

use crate::error::CliError;

/// What a command produced.
pub struct Report {
    /// The document printed with `--json`.
    pub json: Value,
    /// The text printed otherwise.
    pub human: String,
}

impl Report {
    /// A report with both forms.
    pub fn new(json: Value, human: impl Into<String>) -> Self {
        Report { json, human: human.into() }
    }
}

/// The output mode chosen by `--json`.
#[derive(Clone, Copy, Debug)]
pub struct Output {
    json: bool,
}

impl Output {
    /// Text for people, or JSON documents when `json`.
    pub fn new(json: bool) -> Self {
        Output { json }
    }

    /// Whether `--json` was given.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints a command's one result (pretty JSON, or the text).
    pub fn report(&self, report: &Report) {
        if self.json {
            let text = serde_json::to_string_pretty(&report.json).unwrap_or_else(|_| report.json.to_string());
            write_stdout(&text);
        } else if !report.human.is_empty() {
            write_stdout(&report.human);
        }
    }

    /// Prints one item of a stream (a banner, a followed event): JSON on a single line, so that
    /// each line of the stream is one document.
    pub fn stream(&self, json: &Value, human: &str) {
        if self.json { write_stdout(&json.to_string()) } else { write_stdout(human) }
    }

    /// A progress note or hint, on stderr.
    pub fn note(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        // A closed stderr leaves nobody to tell.
        let _ = writeln!(err, "{text}");
    }

    /// Prints a failure.
    pub fn error(&self, error: &CliError) {
        if self.json {
            write_stdout(&error.to_json().to_string());
        } else {
            self.note(&format!("error: {}", error.human()));
        }
    }
}

fn write_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`atoma events | head`) is not an error worth reporting.
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}
