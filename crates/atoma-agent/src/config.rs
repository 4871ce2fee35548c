//! The agent's configuration file (docs/AGENT.md §2): TOML, every field checked when it is read,
//! so a mistake stops the agent at start with the field's name instead of at the first request.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use atoma_contract::config::MAX_ENDPOINT_BYTES;
use serde::Deserialize;

/// Settle a stack idle this long, by default.
pub const DEFAULT_IDLE_SETTLE_SECS: u64 = 30;
/// Wait this long for a backend's answer, by default.
pub const DEFAULT_BACKEND_TIMEOUT_SECS: u64 = 60;
/// The longest idle time and backend timeout accepted.
pub const MAX_SECS: u64 = 86_400;

/// Why a configuration is refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The text is not TOML of the expected shape (unknown fields included).
    #[error("the agent's configuration: {0}")]
    Parse(String),
    /// A field's value is not allowed.
    #[error("the agent's configuration: `{field}` {problem}")]
    Invalid {
        /// The field, as written in the file.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { field: field.into(), problem: problem.into() }
}

/// The whole configuration.
#[derive(Clone, PartialEq, Eq, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Any validator's JSON-RPC URL.
    pub rpc: String,
    /// Where the OpenAI-compatible API listens.
    pub listen: SocketAddr,
    /// The URL users are told (announced on chain); `http://<the address bound>` when absent.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Where the agent keeps its state (`agent.redb`).
    pub state_dir: PathBuf,
    /// Settle a stack idle this long.
    #[serde(default = "default_idle")]
    pub idle_settle_secs: u64,
    /// The nodes the agent operates.
    pub nodes: Vec<NodeConfig>,
    /// The backend of each model the nodes serve, by the model's name on chain.
    pub models: BTreeMap<String, ModelConfig>,
}

/// One node the agent operates.
#[derive(Clone, PartialEq, Eq, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The keystore alias (or address) of the key that owns the node's badge.
    pub key: String,
    /// The node's small id.
    pub node: u64,
}

/// The inference backend of one model.
#[derive(Clone, PartialEq, Eq, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The backend's OpenAI base URL (`http://host:port/v1`).
    pub backend: String,
    /// The model's name at the backend, when it differs from the name on chain.
    #[serde(default)]
    pub backend_model: Option<String>,
    /// How long to wait for the backend's answer.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_idle() -> u64 {
    DEFAULT_IDLE_SETTLE_SECS
}

fn default_timeout() -> u64 {
    DEFAULT_BACKEND_TIMEOUT_SECS
}

fn is_http_url(url: &str) -> bool {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace))
}

impl AgentConfig {
    /// Reads and checks the file at `path`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, the syntax error or the field.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Self::parse(&text)
    }

    /// Parses and checks a configuration.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] for TOML of another shape, [`ConfigError::Invalid`] naming the
    /// first field whose value is not allowed.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: AgentConfig = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.check()?;
        Ok(config)
    }

    /// Checks every field (done by [`AgentConfig::parse`]; again after flags change fields).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first field whose value is not allowed.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !is_http_url(&self.rpc) {
            return Err(invalid("rpc", "must be an http:// or https:// URL"));
        }
        if self.public_url.as_deref().is_some_and(|url| !atoma_contract::is_valid_endpoint(url)) {
            return Err(invalid(
                "public_url",
                format!(
                    "must be an http:// or https:// URL of at most {MAX_ENDPOINT_BYTES} printable ASCII bytes (what the chain accepts as an endpoint)"
                ),
            ));
        }
        if !(1..=MAX_SECS).contains(&self.idle_settle_secs) {
            return Err(invalid("idle_settle_secs", format!("must be in 1..={MAX_SECS}")));
        }
        if self.nodes.is_empty() {
            return Err(invalid("nodes", "must name at least one node ([[nodes]] key = …, node = …)"));
        }
        let mut seen = BTreeSet::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if node.key.trim().is_empty() {
                return Err(invalid(format!("nodes[{i}].key"), "must not be empty"));
            }
            if node.node == 0 {
                return Err(invalid(format!("nodes[{i}].node"), "must be a node's small id (from 1)"));
            }
            if !seen.insert(node.node) {
                return Err(invalid(
                    format!("nodes[{i}].node"),
                    format!("node {} is listed twice", node.node),
                ));
            }
        }
        if self.models.is_empty() {
            return Err(invalid("models", "must configure the backend of at least one model"));
        }
        for (name, model) in &self.models {
            if !is_http_url(&model.backend) {
                return Err(invalid(format!("models.{name}.backend"), "must be an http:// or https:// URL"));
            }
            if !(1..=MAX_SECS).contains(&model.timeout_secs) {
                return Err(invalid(
                    format!("models.{name}.timeout_secs"),
                    format!("must be in 1..={MAX_SECS}"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
rpc = "http://127.0.0.1:9000"
listen = "127.0.0.1:8080"
state_dir = "/tmp/agent"

[[nodes]]
key = "operator-1"
node = 3

[[nodes]]
key = "operator-2"
node = 4

[models."llama-3-8b"]
backend = "http://127.0.0.1:8000/v1"
backend_model = "meta-llama/Meta-Llama-3-8B-Instruct"
timeout_secs = 20
"#;

    #[test]
    fn the_documented_example_parses_with_its_defaults() {
        let config = AgentConfig::parse(EXAMPLE).expect("parses");
        assert_eq!(config.listen, "127.0.0.1:8080".parse().expect("an address"));
        assert_eq!(config.public_url, None);
        assert_eq!(config.idle_settle_secs, DEFAULT_IDLE_SETTLE_SECS);
        assert_eq!(config.nodes.iter().map(|n| n.node).collect::<Vec<_>>(), [3, 4]);
        let model = &config.models["llama-3-8b"];
        assert_eq!(model.timeout_secs, 20);
        assert_eq!(model.backend_model.as_deref(), Some("meta-llama/Meta-Llama-3-8B-Instruct"));
    }

    fn field_of(text: &str) -> String {
        match AgentConfig::parse(text) {
            Err(ConfigError::Invalid { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[test]
    fn bad_values_are_refused_by_field() {
        let cases = [
            (EXAMPLE.replace("http://127.0.0.1:9000", "127.0.0.1:9000"), "rpc"),
            (EXAMPLE.replace("state_dir", "public_url = \"ftp://x\"\nstate_dir"), "public_url"),
            (EXAMPLE.replace("state_dir", "idle_settle_secs = 0\nstate_dir"), "idle_settle_secs"),
            (EXAMPLE.replace("node = 4", "node = 3"), "nodes[1].node"),
            (EXAMPLE.replace("node = 3", "node = 0"), "nodes[0].node"),
            (EXAMPLE.replace("\"operator-2\"", "\" \""), "nodes[1].key"),
            (EXAMPLE.replace("http://127.0.0.1:8000/v1", "http:///v1"), "models.llama-3-8b.backend"),
            (EXAMPLE.replace("timeout_secs = 20", "timeout_secs = 100000"), "models.llama-3-8b.timeout_secs"),
        ];
        for (text, field) in cases {
            assert_eq!(field_of(&text), field);
        }
        let no_nodes = EXAMPLE.split("[[nodes]]").next().expect("a head").to_string()
            + "nodes = []\n[models.m]\nbackend = \"http://b/v1\"\n";
        assert_eq!(field_of(&no_nodes), "nodes");
        let no_models = EXAMPLE.split("[models.").next().expect("a head").to_string() + "[models]\n";
        assert_eq!(field_of(&no_models), "models");
    }

    #[test]
    fn unknown_fields_and_bad_toml_are_parse_errors() {
        for text in
            [EXAMPLE.replace("listen", "listen_on"), "rpc = ".to_string(), EXAMPLE.replace("8080\"", "8080")]
        {
            assert!(matches!(AgentConfig::parse(&text), Err(ConfigError::Parse(_))), "{text}");
        }
        let missing = AgentConfig::load(Path::new("/nonexistent/agent.toml"));
        assert!(matches!(missing, Err(ConfigError::Read { .. })));
    }
}
