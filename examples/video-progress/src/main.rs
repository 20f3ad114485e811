//! A jss-tracker server with the `video_progress` processor type: `cargo run -p
//! jss-tracker-example-video-progress -- tracker.toml`, with a `[[pipeline.add]]` entry of type
//! `video_progress` in the configuration.

use std::path::PathBuf;

use tracker_server::Settings;

fn main() -> anyhow::Result<()> {
    let config = std::env::args_os().nth(1).map(PathBuf::from);
    let settings = Settings::load(config.as_deref())?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let app = jss_tracker_example_video_progress::application()
            .build(settings)
            .await?;
        println!("listening on http://{}", app.local_addr());
        app.run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    })
}
