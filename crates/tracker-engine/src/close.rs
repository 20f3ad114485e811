//! Ending an interaction: `/flush`, an expired session found by its next request, the sweeper.

use chrono::{DateTime, Utc};
use tracker_core::{
    session::{Close, CloseReason, Interaction, LiveSession, SessionLock, Visitor},
    store::ChangeSet,
    Error,
};

use crate::{metrics, Sessions};

impl Sessions {
    /// Commits the close of `interaction`, counted and logged.
    pub(crate) async fn commit_close(
        &self,
        interaction: &Interaction,
        close: Close,
    ) -> Result<(), Error> {
        self.store
            .commit(ChangeSet::close(interaction, close))
            .await?;
        ::metrics::counter!(metrics::SESSIONS_CLOSED, "reason" => close.reason.as_str())
            .increment(1);
        tracing::info!(
            interaction = %interaction.id,
            contact = %interaction.contact_id,
            reason = close.reason.as_str(),
            engagement_value = interaction.engagement_value,
            "interaction closed"
        );
        Ok(())
    }

    /// Locks the session; when the state does not hold its interaction (it left memory, or is
    /// from before a restart), resumes it from the store if it is the visitor's. `None`: the
    /// cookie names no open interaction of this device.
    pub(crate) async fn lock_or_resume(
        &self,
        id: tracker_core::ids::SessionId,
        visitor: &Visitor,
    ) -> Result<Option<Box<dyn SessionLock>>, Error> {
        let mut lock = self.state.lock(id).await?;
        if lock.live().is_none() {
            match self.store.open_interaction(id).await? {
                Some(interaction) if interaction.device_id == visitor.device => {
                    lock.keep(LiveSession {
                        interaction,
                        refreshed_at: None,
                    })
                    .await?;
                    ::metrics::counter!(metrics::SESSIONS_RESUMED).increment(1);
                }
                // Dropping the lock forgets the empty session.
                _ => return Ok(None),
            }
        }
        Ok(Some(lock))
    }

    /// Ends `live` if it has been idle past the timeout and was not swept yet, before the
    /// visitor's next visit starts; what is left live.
    pub(crate) async fn end_if_expired(
        &self,
        live: Option<LiveSession>,
        now: DateTime<Utc>,
    ) -> Result<Option<LiveSession>, Error> {
        let Some(expired) = live
            .as_ref()
            .filter(|l| l.interaction.is_expired(now, self.timeout))
        else {
            return Ok(live);
        };
        let close = expired.interaction.close(CloseReason::Timeout, now);
        match self.commit_close(&expired.interaction, close).await {
            Ok(()) => Ok(None),
            // Closed in the store already: the next visit starts all the same.
            Err(Error::Stale(detail)) => {
                tracing::warn!(%detail, "stale session ended");
                Ok(None)
            }
            // The state still holds it, for the sweeper or the next request.
            Err(error) => Err(error),
        }
    }

    /// Ends the session's interaction now (`/flush`). Returns whether one was live.
    pub async fn flush(&self, visitor: &Visitor, now: DateTime<Utc>) -> Result<bool, Error> {
        let Some(id) = visitor.session else {
            return Ok(false);
        };
        if let Some((_, reason)) = self.robot_session(visitor, now) {
            self.robot_ends(id, reason);
            return Ok(true);
        }
        let Some(lock) = self.lock_or_resume(id, visitor).await? else {
            return Ok(false);
        };
        let Some(live) = lock
            .live()
            .filter(|l| l.interaction.device_id == visitor.device)
            .map(|l| l.interaction.clone())
        else {
            return Ok(false);
        };
        let reason = if live.is_expired(now, self.timeout) {
            CloseReason::Timeout
        } else {
            CloseReason::Flush
        };
        self.commit_close(&live, live.close(reason, now)).await?;
        lock.end().await?;
        Ok(true)
    }
}
