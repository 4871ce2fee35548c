//! The Atoma node agent (docs/AGENT.md): serves the stacks sampled to its nodes through an
//! OpenAI-compatible API in front of an inference backend, and settles, attests, disputes and
//! claims on their behalf.
//!
//! Built so far: [`backend`], the deterministic OpenAI-compatible server that tests and demos
//! put behind agents (`atoma backend`); [`token`], the stack tokens a stack's owner hands an
//! OpenAI client as its API key (`atoma stack token`); [`config`], the agent's configuration
//! file; [`store`], the agent's durable state; and [`follow`], which acts on every chain event
//! once from a durable cursor. The rest of the agent
//! lands in the next slices; docs/AGENT.md §9 keeps the list.

pub mod backend;
pub mod config;
pub mod follow;
pub mod store;
pub mod token;
