//! The sweeper's side of the engine: ending interactions idle for the timeout, paced so that
//! a mass expiry does not stall tracking.

use chrono::{DateTime, Utc};
use futures::StreamExt;
use tracker_core::{
    ids::SessionId,
    session::{CloseReason, Interaction},
    Error,
};

use crate::Sessions;

/// Closes the sweeper has in flight at once: enough for the writer to group them, few enough
/// that tracking requests queued behind them wait little (mass expiry must not stall tracking).
const SWEEP_CONCURRENCY: usize = 32;

/// Open interactions the sweeper reads from the store (and sessions it looks at in memory)
/// at a time.
const SWEEP_PAGE: usize = 256;

/// Most interactions the sweeper ends per second when many expire together: each close costs
/// the writer and a processor tens of microseconds, and unpaced, a million expiring at once
/// took the p99 of tracking at 6,000 requests/s to 435 ms (`tracker-bench flood`).
const SWEEP_CLOSES_PER_SECOND: f64 = 5_000.0;

/// How many of a page's closes ended a visit; the first failure is kept in `failed`.
fn count_closed(outcomes: Vec<Result<bool, Error>>, failed: &mut Option<Error>) -> usize {
    let mut closed = 0;
    for outcome in outcomes {
        match outcome {
            Ok(ended) => closed += usize::from(ended),
            Err(error) => {
                failed.get_or_insert(error);
            }
        }
    }
    closed
}

/// Waits, after a page of `closed` closes that took `took`, so that closes keep to
/// [`SWEEP_CLOSES_PER_SECOND`].
async fn pace(closed: usize, took: std::time::Duration) {
    let budget = std::time::Duration::from_secs_f64(closed as f64 / SWEEP_CLOSES_PER_SECOND);
    if let Some(rest) = budget.checked_sub(took) {
        tokio::time::sleep(rest).await;
    }
}

impl Sessions {
    /// Ends every interaction idle for the timeout: those in the session state, then those
    /// the store holds open that no live session has (left memory under load, or from before
    /// a restart), a page at a time. Closes run a few at a time, so that when many sessions
    /// expire together tracking requests still get their commits. Returns how many ended.
    /// Sessions busy with a request are skipped: they are not idle. A session that fails to
    /// close is kept for the next sweep and never stops the others.
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<usize, Error> {
        self.sweep_robots(now);
        let mut failed: Option<Error> = None;
        let closed =
            self.sweep_live(now, &mut failed).await? + self.sweep_orphans(now, &mut failed).await?;
        match failed {
            // Said once per sweep, after every other session had its turn.
            Some(error) => Err(error),
            None => Ok(closed),
        }
    }

    /// The live sessions' side, in id order: session ids are time-ordered, so sessions that
    /// expire together close in the order their rows were written, touching neighbouring
    /// pages of the store.
    async fn sweep_live(
        &self,
        now: DateTime<Utc>,
        failed: &mut Option<Error>,
    ) -> Result<usize, Error> {
        let mut candidates = self.state.idle_sessions(now - self.timeout).await?;
        candidates.sort_unstable();
        let mut closed = 0;
        let mut pages = candidates.chunks(SWEEP_PAGE).peekable();
        while let Some(page) = pages.next() {
            let started = std::time::Instant::now();
            let outcomes: Vec<Result<bool, Error>> = futures::stream::iter(page.to_vec())
                .map(|id| async move { self.sweep_session(id, now).await })
                .buffer_unordered(SWEEP_CONCURRENCY)
                .collect()
                .await;
            let in_page = count_closed(outcomes, failed);
            closed += in_page;
            if pages.peek().is_some() {
                pace(in_page, started.elapsed()).await;
            }
        }
        Ok(closed)
    }

    /// The store's side: open interactions no live session holds, a page at a time.
    async fn sweep_orphans(
        &self,
        now: DateTime<Utc>,
        failed: &mut Option<Error>,
    ) -> Result<usize, Error> {
        let idle_before = now - self.timeout;
        let mut closed = 0;
        let mut after = None;
        loop {
            let started = std::time::Instant::now();
            let page = match self
                .store
                .idle_open_interactions(idle_before, after, SWEEP_PAGE)
                .await
            {
                Ok(page) => page,
                Err(error) => {
                    failed.get_or_insert(error);
                    return Ok(closed);
                }
            };
            let full = page.len() == SWEEP_PAGE;
            after = page.last().map(tracker_core::store::OpenCursor::from);
            let mut orphans: Vec<Interaction> = Vec::new();
            for interaction in page {
                if interaction.is_expired(now, self.timeout)
                    && !self.state.holds(interaction.session_id).await?
                {
                    orphans.push(interaction);
                }
            }
            let in_page = count_closed(self.close_orphans(orphans, now).await, failed);
            closed += in_page;
            if !full {
                return Ok(closed);
            }
            pace(in_page, started.elapsed()).await;
        }
    }

    /// Closes interactions no session holds, a few at a time; each says whether it ended.
    async fn close_orphans(
        &self,
        orphans: Vec<Interaction>,
        now: DateTime<Utc>,
    ) -> Vec<Result<bool, Error>> {
        futures::stream::iter(orphans)
            .map(|interaction| async move {
                let close = interaction.close(CloseReason::Timeout, now);
                match self.commit_close(&interaction, close).await {
                    Ok(()) => Ok(true),
                    // Closed meanwhile (its visitor came back and ended it).
                    Err(Error::Stale(_)) => Ok(false),
                    Err(error) => Err(error),
                }
            })
            .buffer_unordered(SWEEP_CONCURRENCY)
            .collect()
            .await
    }

    /// Ends one live session if it is idle; says whether it did.
    async fn sweep_session(&self, id: SessionId, now: DateTime<Utc>) -> Result<bool, Error> {
        let Some(lock) = self.state.try_lock(id).await? else {
            return Ok(false);
        };
        let Some(live) = lock.live().map(|l| l.interaction.clone()) else {
            lock.end().await?;
            return Ok(false);
        };
        if !live.is_expired(now, self.timeout) {
            return Ok(false);
        }
        match self
            .commit_close(&live, live.close(CloseReason::Timeout, now))
            .await
        {
            Ok(()) => {
                lock.end().await?;
                Ok(true)
            }
            Err(Error::Stale(detail)) => {
                // Closed in the store already: nothing left to end here.
                tracing::warn!(%detail, "stale session dropped by the sweeper");
                lock.end().await?;
                Ok(false)
            }
            // Kept for the next sweep.
            Err(error) => Err(error),
        }
    }
}
