//! `atoma events`: a page of the event log, or a live WebSocket subscription (`--follow`).

use atoma_api::EventId;
use atoma_contract::{NodeSmallId, StackSmallId, TaskSmallId};
use atoma_types::{Digest, EventFilter};

use crate::cli::EventsArgs;
use crate::context::Ctx;
use crate::error::{CliError, CliErrorKind, CliResult};
use crate::output::Report;
use crate::render;

/// Prints a page of events, or follows them until Ctrl-C.
///
/// # Errors
/// `EInvalidArgument` for a bad filter or cursor; `EInvalidCursor`; transport errors.
pub async fn run(ctx: &mut Ctx, args: EventsArgs) -> CliResult<()> {
    let filter = filter(ctx, &args)?;
    if args.follow {
        return follow(ctx, &filter).await;
    }
    let cursor = args.cursor.as_deref().map(parse_cursor).transpose()?;
    let rpc = ctx.rpc()?;
    let limit = u64::try_from(args.limit).unwrap_or(u64::MAX);
    let page =
        rpc.check(rpc.client().query_events(&filter, cursor.as_ref(), Some(limit), args.desc).await)?;
    let mut text = render::events_table(&page.data, &ctx.labels());
    if let (true, Some(next)) = (page.has_next_page, &page.next_cursor) {
        text.push_str(&format!("\n\nmore: --cursor {}:{}", next.tx_digest, next.event_seq));
    }
    ctx.out.report(&Report::new(render::to_json(&page), text));
    Ok(())
}

/// The one filter the flags name (clap allows at most one).
fn filter(ctx: &mut Ctx, args: &EventsArgs) -> CliResult<EventFilter> {
    if let Some(name) = &args.event_type {
        return Ok(EventFilter::EventType(name.clone()));
    }
    if let Some(sender) = &args.sender {
        return Ok(EventFilter::Sender(ctx.keys()?.address(sender)?));
    }
    if let Some(tx) = &args.tx {
        let digest: Digest = tx.parse().map_err(|e| CliError::invalid(format!("--tx {tx:?}: {e}")))?;
        return Ok(EventFilter::Transaction(digest));
    }
    Ok(match (args.node, args.task, args.stack) {
        (Some(n), _, _) => EventFilter::Node(NodeSmallId(n)),
        (_, Some(t), _) => EventFilter::Task(TaskSmallId(t)),
        (_, _, Some(s)) => EventFilter::Stack(StackSmallId(s)),
        _ => EventFilter::All,
    })
}

/// `DIGEST:SEQ` as printed after a page.
fn parse_cursor(text: &str) -> CliResult<EventId> {
    let bad =
        || CliError::invalid(format!("--cursor {text:?}: expected DIGEST:SEQ, as printed after a page"));
    let (digest, seq) = text.rsplit_once(':').ok_or_else(bad)?;
    let digest: Digest = digest.parse().map_err(|_| bad())?;
    let seq: u64 = seq.parse().map_err(|_| bad())?;
    Ok(EventId::new(&digest.0, seq))
}

/// Prints matching events as they are committed, until Ctrl-C or the node goes away.
async fn follow(ctx: &mut Ctx, filter: &EventFilter) -> CliResult<()> {
    let out = ctx.out;
    let labels = ctx.labels();
    let rpc = ctx.rpc()?;
    let mut stream = rpc.check(rpc.client().subscribe_events(filter).await)?;
    out.note("following events; press Ctrl-C to stop");
    loop {
        tokio::select! {
            next = stream.next() => match next {
                Some(Ok(event)) => out.stream(&render::to_json(&event), &render::event_line(&event, &labels)),
                Some(Err(e)) => return Err(rpc.error(e)),
                None => {
                    return Err(CliError::new(
                        CliErrorKind::ERpc,
                        "the node closed the subscription (it stopped, or this reader fell behind)",
                    ));
                }
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    // Leaving is what was asked; a failed unsubscribe changes nothing for the user.
    let _ = stream.unsubscribe().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let digest = Digest([7; 32]);
        let id = parse_cursor(&format!("{digest}:3")).expect("valid cursor");
        assert_eq!((id.tx_digest, id.event_seq), (digest.to_string(), 3));
        assert!(parse_cursor("nocolon").is_err());
        assert!(parse_cursor(&format!("{digest}:x")).is_err());
        assert!(parse_cursor("0OIl:1").is_err());
    }
}
