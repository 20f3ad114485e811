//! Optional batching for one visitor: a bounded queue, a background task that sends batches,
//! and retry with backoff. Events are stamped when queued, so they keep their time however long
//! they wait.

use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
    time::Instant,
};

use crate::{Error, Event, Visitor};

/// How a [`Batcher`] groups and retries.
#[derive(Debug, Clone)]
pub struct BatchConfig {
    /// Most events per request.
    pub max_batch: usize,
    /// Most events waiting; [`Batcher::try_track`] refuses beyond it.
    pub queue_capacity: usize,
    /// How long the first event of a batch waits for company before the batch is sent.
    pub linger: Duration,
    /// Retries of a failed batch.
    pub retry: RetryPolicy,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_batch: 20,
            queue_capacity: 1000,
            linger: Duration::from_millis(500),
            retry: RetryPolicy::default(),
        }
    }
}

/// Exponential backoff with jitter, for network errors, `429` and `5xx`. Other refusals (a bad
/// event) are not retried: the same batch would be refused again.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The wait before the first retry; doubled each time.
    pub initial_backoff: Duration,
    /// The longest wait.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 6,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry `attempt` (0-based): `initial * 2^attempt`, capped, times a random
    /// factor in [0.5, 1] so that many clients do not retry in step.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(attempt.min(20)));
        let capped = exp.min(self.max_backoff);
        capped.mul_f64(rand::rng().random_range(0.5..=1.0))
    }
}

/// The queue is full: the event was not queued.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the batch queue is full (or closed); the event was not queued")]
pub struct QueueFull(pub Event);

/// What a [`Batcher`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Batches the tracker accepted.
    pub batches_sent: u64,
    /// Events the tracker accepted.
    pub events_sent: u64,
    /// Retries made.
    pub retries: u64,
    /// Events given up on (refused, or retries exhausted).
    pub events_dropped: u64,
    /// The last error, if any.
    pub last_error: Option<String>,
}

enum Command {
    Event(Event),
    Flush(oneshot::Sender<Result<bool, Error>>),
}

/// Batches one visitor's events in the background. See [`BatchConfig`].
#[derive(Debug)]
pub struct Batcher {
    tx: mpsc::Sender<Command>,
    task: JoinHandle<BatchStats>,
}

impl Batcher {
    /// Starts the background task (needs a Tokio runtime).
    pub fn spawn(visitor: Visitor, config: BatchConfig) -> Self {
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let task = tokio::spawn(run(visitor, config, rx));
        Self { tx, task }
    }

    /// Queues an event, stamped with the current time if it has none; refuses when full.
    pub fn try_track(&self, event: Event) -> Result<(), QueueFull> {
        let event = stamp(event);
        self.tx
            .try_send(Command::Event(event))
            .map_err(|e| QueueFull(e.into_inner().into_event()))
    }

    /// Queues an event, waiting for room.
    pub async fn track(&self, event: Event) -> Result<(), QueueFull> {
        let event = stamp(event);
        self.tx
            .send(Command::Event(event))
            .await
            .map_err(|e| QueueFull(e.0.into_event()))
    }

    /// Sends everything queued, then ends the interaction. Returns whether one was open.
    pub async fn flush(&self) -> Result<bool, Error> {
        let (reply, answer) = oneshot::channel();
        if self.tx.send(Command::Flush(reply)).await.is_err() {
            return Ok(false);
        }
        answer.await.unwrap_or(Ok(false))
    }

    /// Sends everything queued (with retries), stops, and says what was done.
    pub async fn close(self) -> BatchStats {
        drop(self.tx);
        self.task.await.unwrap_or_default()
    }
}

impl Command {
    /// The event of a command that `track` / `try_track` sent (they send nothing else).
    fn into_event(self) -> Event {
        match self {
            Command::Event(event) => event,
            Command::Flush(_) => unreachable!("track sends only events"),
        }
    }
}

fn stamp(event: Event) -> Event {
    if event.has_timestamp() {
        event
    } else {
        event.at(Utc::now())
    }
}

async fn run(visitor: Visitor, config: BatchConfig, mut rx: mpsc::Receiver<Command>) -> BatchStats {
    let mut stats = BatchStats::default();
    let mut batch: Vec<Event> = Vec::with_capacity(config.max_batch);
    let mut pending: Option<Command> = None;
    loop {
        let first = match pending.take() {
            Some(command) => command,
            None => match rx.recv().await {
                Some(command) => command,
                None => break,
            },
        };
        match first {
            Command::Flush(reply) => {
                let _ = reply.send(flush(&visitor, &config.retry, &mut stats).await);
                continue;
            }
            Command::Event(event) => batch.push(event),
        }
        let deadline = Instant::now() + config.linger;
        while batch.len() < config.max_batch {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(Command::Event(event))) => batch.push(event),
                Ok(Some(flush)) => {
                    // Send what is queued first: the flush must come after it.
                    pending = Some(flush);
                    break;
                }
                Ok(None) | Err(_) => break,
            }
        }
        send(&visitor, &config.retry, &mut batch, &mut stats).await;
    }
    send(&visitor, &config.retry, &mut batch, &mut stats).await;
    stats
}

async fn send(
    visitor: &Visitor,
    retry: &RetryPolicy,
    batch: &mut Vec<Event>,
    stats: &mut BatchStats,
) {
    if batch.is_empty() {
        return;
    }
    let mut attempt = 0;
    loop {
        match visitor.track(batch).await {
            Ok(_) => {
                stats.batches_sent += 1;
                stats.events_sent += batch.len() as u64;
                break;
            }
            Err(error) if error.is_retryable() && attempt < retry.max_retries => {
                tracing::debug!(%error, attempt, "batch failed; retrying");
                tokio::time::sleep(retry.backoff(attempt)).await;
                attempt += 1;
                stats.retries += 1;
            }
            Err(error) => {
                tracing::warn!(%error, events = batch.len(), "batch dropped");
                stats.events_dropped += batch.len() as u64;
                stats.last_error = Some(error.to_string());
                break;
            }
        }
    }
    batch.clear();
}

async fn flush(
    visitor: &Visitor,
    retry: &RetryPolicy,
    stats: &mut BatchStats,
) -> Result<bool, Error> {
    let mut attempt = 0;
    loop {
        match visitor.flush().await {
            Err(error) if error.is_retryable() && attempt < retry.max_retries => {
                tokio::time::sleep(retry.backoff(attempt)).await;
                attempt += 1;
                stats.retries += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let policy = RetryPolicy {
            max_retries: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        for _ in 0..50 {
            let first = policy.backoff(0);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = policy.backoff(2);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let late = policy.backoff(30);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_secs(1));
        }
    }
}
