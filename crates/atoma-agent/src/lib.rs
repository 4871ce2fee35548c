//! The Atoma node agent (docs/AGENT.md): serves the stacks sampled to its nodes through an
//! OpenAI-compatible API in front of an inference backend, and settles, attests, disputes and
//! claims on their behalf.
//!
//! [`agent::start`] runs one: [`serve`] is its HTTP API (stack owners authorized by the stack
//! tokens of [`token`], requests checked and sent on by [`upstream`], every exchange recorded
//! in [`records`] before the answer), [`follow`] acts on every chain event once from a durable
//! cursor ([`store`]), and [`work`] settles, attests, resolves and claims. [`config`] is its
//! configuration file; [`backend`] the deterministic OpenAI-compatible server tests and demos
//! put behind agents (`atoma backend`).

pub mod agent;
pub mod backend;
pub mod config;
pub mod follow;
pub mod records;
pub mod serve;
pub mod store;
pub mod token;
pub mod upstream;
pub mod work;

pub use agent::{AgentError, NodeKeys, RunningAgent, start};
