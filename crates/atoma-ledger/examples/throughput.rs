//! Measures how fast a local chain orders, executes and durably commits transactions.
//!
//! ```sh
//! cargo run --release -p atoma-ledger --example throughput -- [transactions] [senders] [nodes]
//! ```
//!
//! Three runs in a fresh temp dir: pipelined transfers (every transaction enqueued, then all
//! outcomes awaited: blocks fill up), one-at-a-time transfers (one block and one fsync each), and
//! the cost of the per-block state digest once `nodes` nodes are registered.

use std::time::{Duration, Instant};

use atoma_contract::{Address, Call, TOMA};
use atoma_ledger::{Chain, ChainConfig, ChainHandle, LedgerError};
use atoma_types::{Keypair, SignedTransaction};

fn transfer(to: Address) -> Call {
    Call::TransferToma { recipient: to, amount: 1 }
}

fn pre_sign(handle: &ChainHandle, keys: &[Keypair], total: u64, first_nonce: u64) -> Vec<SignedTransaction> {
    let chain = handle.node().chain_info().chain_id.0;
    let n = keys.len() as u64;
    (0..total)
        .map(|i| {
            let key = &keys[(i % n) as usize];
            let to = keys[((i + 1) % n) as usize].address();
            key.sign_call(chain, first_nonce + i / n, transfer(to))
        })
        .collect()
}

async fn pipelined(handle: &ChainHandle, txs: Vec<SignedTransaction>) -> Result<Duration, LedgerError> {
    let started = Instant::now();
    let pending = txs.into_iter().map(|tx| handle.enqueue(tx)).collect::<Result<Vec<_>, _>>()?;
    for p in pending {
        p.outcome().await?;
    }
    Ok(started.elapsed())
}

async fn one_at_a_time(handle: &ChainHandle, txs: Vec<SignedTransaction>) -> Result<Duration, LedgerError> {
    let started = Instant::now();
    for tx in txs {
        handle.submit(tx).await?;
    }
    Ok(started.elapsed())
}

async fn register_nodes(handle: &ChainHandle, count: u64) -> Result<(), LedgerError> {
    let chain = handle.node().chain_info().chain_id.0;
    let mut pending = Vec::new();
    for i in 0..count {
        let key = Keypair::test_account(10_000 + i);
        handle.faucet(key.address(), 2_000 * TOMA).await?;
        let call = Call::RegisterNode { collateral: 1_000 * TOMA, supported_optimizations: 0 };
        pending.push(handle.enqueue(key.sign_call(chain, 0, call))?);
    }
    for p in pending {
        p.outcome().await?;
    }
    Ok(())
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(f64::EPSILON)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let total = args.first().copied().unwrap_or(10_000);
    let senders = args.get(1).copied().unwrap_or(100).clamp(1, 1000);
    let nodes = args.get(2).copied().unwrap_or(500);
    let dir = tempfile::tempdir()?;
    let mut config = ChainConfig::local(dir.path());
    config.genesis.accounts = senders;
    config.mempool_capacity = usize::try_from(total)?.max(1);
    let (handle, task) = Chain::open(config)?;
    let keys: Vec<Keypair> = (0..senders).map(Keypair::test_account).collect();

    let txs = pre_sign(&handle, &keys, total, 0);
    let elapsed = pipelined(&handle, txs).await?;
    let blocks = handle.node().chain_info().height;
    println!(
        "pipelined: {total} transfers from {senders} senders in {:.2?}: {:.0} tx/s, {blocks} blocks, last commit {} µs",
        elapsed,
        per_second(total, elapsed),
        handle.ledger().metrics().snapshot().last_commit_latency_us
    );

    let sequential = 200;
    let next = total.div_ceil(senders);
    let txs = pre_sign(&handle, &keys[..1], sequential, next);
    let elapsed = one_at_a_time(&handle, txs).await?;
    println!(
        "one at a time: {sequential} transfers in {:.2?}: {:.2} ms per transaction (one block and one fsync each)",
        elapsed,
        elapsed.as_secs_f64() * 1000.0 / sequential as f64
    );

    register_nodes(&handle, nodes).await?;
    let started = Instant::now();
    let bytes = handle.ledger().with_state(|db| db.canonical_bytes().len());
    let encode = started.elapsed();
    let txs = pre_sign(&handle, &keys[..1], 100, next + sequential);
    let elapsed = one_at_a_time(&handle, txs).await?;
    let m = handle.ledger().metrics().snapshot();
    println!(
        "with {nodes} nodes: state {bytes} bytes, canonical_bytes {encode:.2?}; a one-transfer block now takes {} µs (commit {} µs), {:.2} ms per transaction",
        m.last_block_latency_us,
        m.last_commit_latency_us,
        elapsed.as_secs_f64() * 10.0
    );
    assert!(handle.ledger().with_state(|db| db.audit().holds()));
    handle.shutdown();
    drop(handle);
    task.join()?;
    Ok(())
}
