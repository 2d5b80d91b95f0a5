//! The leader re-reconciles organizations whose usage changed on any replica: ingestion on this replica
//! triggers at once (a channel), usage taken in by a follower is found here in the ledger within a poll.

use super::OrgRef;
use super::context::Context;
use futures::channel::mpsc::UnboundedSender;
use jiff::{SignedDuration, Timestamp};
use kube::runtime::reflector::ObjectRef;
use std::sync::Arc;
use std::time::Duration;

/// How often the ledger is asked: the bound on event → status lag for usage reported to a follower. Every
/// organization with new usage is reconciled once per poll, so this also bounds the reconcile rate.
const POLL: Duration = Duration::from_secs(10);
/// Overlap between polls, for replicas whose clocks differ a little (a repeated trigger costs one reconcile).
const OVERLAP: SignedDuration = SignedDuration::from_secs(2);

pub async fn run(ctx: Arc<Context>, org_tx: UnboundedSender<OrgRef>) {
    let Some(ledger) = ctx.ledger.clone() else { return };
    let mut since = Timestamp::now();
    loop {
        tokio::time::sleep(POLL).await;
        let asked = Timestamp::now();
        match ledger.organizations_with_usage_since(since.saturating_sub(OVERLAP).unwrap_or(since)).await {
            Ok(organizations) => {
                for name in organizations {
                    let _ = org_tx.unbounded_send(ObjectRef::new(&name));
                }
                since = asked;
            }
            Err(err) => tracing::debug!(error = %err, "reading changed usage failed; asking again at the next poll"),
        }
    }
}
