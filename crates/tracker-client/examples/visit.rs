//! One visit against a running tracker, first request by request, then through a batcher.
//!
//! ```sh
//! cargo run -p tracker-client --example visit -- http://localhost:8080 <sc_apikey>
//! ```

use tracker_client::{BatchConfig, Batcher, Client, Event};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "http://localhost:8080".into());
    let key = args
        .next()
        .ok_or("usage: visit <tracker URL> <sc_apikey>")?;
    let client = Client::new(&url, &key)?;

    let visitor = client.visitor();
    let page = "{110D559F-DEA5-42EA-9C1C-8A5DF7E70EF9}";
    visitor
        .track(&[Event::page_view(page, "/products")])
        .await?;
    visitor
        .track(&[
            Event::page_event("Download").data("brochure.pdf"),
            Event::goal("Instant Demo"),
        ])
        .await?;
    visitor
        .track(&[Event::outcome("Opportunity").monetary_value(99.95, "USD")])
        .await?;
    println!("device {}", visitor.device_id().unwrap_or_default());
    println!("flushed: {}", visitor.flush().await?);

    // The same, batched: events queue with their own time and go out in groups.
    let batcher = Batcher::spawn(client.visitor(), BatchConfig::default());
    batcher.track(Event::page_view(page, "/pricing")).await?;
    batcher.track(Event::goal("Register")).await?;
    batcher.flush().await?;
    let stats = batcher.close().await;
    println!("batched: {stats:?}");
    Ok(())
}
