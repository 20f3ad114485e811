//! `type = "webhook"`: forwards every element it sees, as JSON, to a URL, best-effort. It
//! tracks nothing itself (the element goes on to the next processor): place it first to see
//! every element of every batch as received.
//!
//! ```toml
//! [[pipeline.add]]
//! name = "to_crm"
//! before = "page_event"
//! type = "webhook"
//! url = "https://crm.example.com/hooks/tracking"
//! queue = 1024        # elements waiting at most; more are dropped (and counted)
//! timeout = "5s"      # per POST
//! ```
//!
//! Never blocks or fails a request: elements wait in a bounded queue for one sender task per
//! webhook; when the queue is full (the endpoint is slow or down) they are dropped and counted
//! in `jss_tracker_webhook_elements_total{processor, outcome="dropped"}`; failed POSTs are
//! counted as `failed`, delivered ones as `sent`.

use std::{sync::Arc, time::Duration};

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tracker_core::pipeline::{
    settings, Processor, ProcessorSettings, ProcessorType, TrackEventArgs,
};

/// Elements a webhook forwarded, dropped or failed to deliver, by processor.
pub const WEBHOOK_ELEMENTS: &str = "jss_tracker_webhook_elements_total";

/// The `webhook` type's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookSettings {
    /// Where to POST.
    url: String,
    /// Elements waiting at most.
    #[serde(default = "default_queue")]
    queue: usize,
    /// Longest a POST may take.
    #[serde(default = "default_timeout", with = "crate::config::duration")]
    timeout: Duration,
}

fn default_queue() -> usize {
    1024
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

/// A webhook processor.
#[derive(Debug)]
struct Webhook {
    name: String,
    queue: mpsc::Sender<Value>,
}

impl Processor for Webhook {
    fn name(&self) -> &str {
        &self.name
    }

    fn track_event(&self, args: &mut TrackEventArgs<'_>) {
        let element = json!({
            "processor": self.name,
            "receivedAt": args.context().now.to_rfc3339(),
            "element": args.element(),
        });
        if self.queue.try_send(element).is_err() {
            metrics::counter!(WEBHOOK_ELEMENTS, "processor" => self.name.clone(), "outcome" => "dropped")
                .increment(1);
        }
    }
}

/// Posts what is queued, one element at a time, until the processor is gone.
async fn deliver(name: String, url: String, timeout: Duration, mut queue: mpsc::Receiver<Value>) {
    let client = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, webhook = %name, "webhook client cannot be built");
            return;
        }
    };
    while let Some(element) = queue.recv().await {
        let outcome = match client.post(&url).json(&element).send().await {
            Ok(response) if response.status().is_success() => "sent",
            Ok(response) => {
                tracing::warn!(webhook = %name, status = %response.status(), "webhook refused an element");
                "failed"
            }
            Err(error) => {
                tracing::warn!(webhook = %name, %error, "webhook unreachable");
                "failed"
            }
        };
        metrics::counter!(WEBHOOK_ELEMENTS, "processor" => name.clone(), "outcome" => outcome)
            .increment(1);
    }
}

/// The `webhook` processor type.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookType;

impl ProcessorType for WebhookType {
    fn type_name(&self) -> &str {
        "webhook"
    }

    fn build(&self, name: &str, raw: &ProcessorSettings) -> Result<Arc<dyn Processor>, String> {
        let settings: WebhookSettings = settings(raw)?;
        let url = reqwest::Url::parse(&settings.url)
            .map_err(|e| format!("url: '{}' is not a URL: {e}", settings.url))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("url: '{url}' must be http or https"));
        }
        if settings.queue == 0 {
            return Err("queue: must be at least 1".into());
        }
        let (sender, receiver) = mpsc::channel(settings.queue);
        // Building only to check the configuration (check-config) runs outside a runtime: no
        // sender then, and nothing is forwarded.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(deliver(
                name.to_string(),
                url.to_string(),
                settings.timeout,
                receiver,
            ));
        }
        Ok(Arc::new(Webhook {
            name: name.to_string(),
            queue: sender,
        }))
    }
}
