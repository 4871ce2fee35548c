//! The disk under the data directory: fsyncs per second (overwrite one 4 KiB page, then
//! `File::sync_data`) and redb commits per second of a one-row write transaction. Prints both and
//! a redb commit's cost in fsyncs, measured in this run.
//!
//! `cargo bench -p atoma-ledger --bench disk` (set `ATOMA_BENCH_DIR` to measure another
//! filesystem than the temp dir's).

mod support;

use criterion::{Criterion, Throughput};
use redb::{Database, TableDefinition};
use support::{bench_dir, bench_fsync, fsync_ns, mean_ns, rate, show_ns, show_rate};

const ROWS: TableDefinition<u64, &[u8; 32]> = TableDefinition::new("rows");

fn main() {
    let dir = bench_dir();
    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("disk");
    bench_fsync(&mut group, dir.path());
    let db = Database::create(dir.path().join("bench.redb")).expect("redb");
    let mut key = 0u64;
    group.throughput(Throughput::Elements(1));
    group.bench_function("redb_commit", |b| {
        b.iter(|| {
            key += 1;
            let txn = db.begin_write().expect("begin");
            txn.open_table(ROWS).expect("table").insert(key, &[1u8; 32]).expect("insert");
            txn.commit().expect("commit");
        })
    });
    group.finish();
    criterion.final_summary();
    support::print_machine(dir.path());
    let (Some(fsync), Some(commit)) = (fsync_ns(), mean_ns("disk", "redb_commit", None)) else { return };
    println!("\nwhat                         | time      | per second | in fsyncs");
    println!("---------------------------- | --------- | ---------- | ---------");
    println!(
        "write 4 KiB + sync_data      | {:>9} | {:>10} | {:>9.2}",
        show_ns(fsync),
        show_rate(rate(1, fsync)),
        1.0
    );
    println!(
        "redb commit of one row       | {:>9} | {:>10} | {:>9.2}",
        show_ns(commit),
        show_rate(rate(1, commit)),
        commit / fsync
    );
}
