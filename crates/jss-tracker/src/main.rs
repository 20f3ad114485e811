#![doc = include_str!("../README.md")]

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

mod demo;

/// mimalloc instead of glibc's malloc: under ingest load glibc's allocator (`_int_malloc`,
/// `_int_free`, `malloc_consolidate`) was about a tenth of the server's CPU samples.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand};
use tracker_server::{
    config::{random_token, starter_config},
    startup::{banner, shutdown_signal},
    Application, Settings,
};

#[derive(Debug, Parser)]
#[command(
    name = "jss-tracker",
    version,
    about = "A self-hosted Sitecore JSS Tracking Service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the tracker.
    Serve {
        /// The configuration file (default: ./tracker.toml if present).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Write a starter configuration first if the file does not exist.
        #[arg(long)]
        init: bool,
    },
    /// Write a starter configuration if there is none, print the API key, and run the tracker.
    Quickstart {
        /// The configuration file to use or create.
        #[arg(long, short, default_value = "tracker.toml")]
        config: PathBuf,
    },
    /// Try it: a throwaway tracker (temporary database, tracker enabled, a demo API key) and, on
    /// a second port, a page that tracks into it with the real JSS `trackingApi`.
    Demo {
        /// The tracker's port (0: any free port).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// The demo page's port, a different origin from the tracker's (0: any free port).
        #[arg(long, default_value_t = 3000)]
        app_port: u16,
    },
    /// Write a starter tracker.toml (fresh API key and admin token, tracker enabled) and
    /// definitions.toml (the default definitions).
    Init {
        /// Where to write the configuration.
        #[arg(long, short, default_value = "tracker.toml")]
        config: PathBuf,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Load and validate the configuration and definitions, then print the effective settings
    /// (secrets redacted).
    CheckConfig {
        /// The configuration file (default: ./tracker.toml if present).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.command {
        Command::Serve { config, init } => {
            if init {
                let path = config
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("tracker.toml"));
                if !path.exists() {
                    write_starter(&path, false)?;
                }
                return serve(Some(&path), false);
            }
            serve(config.as_deref(), false)
        }
        Command::Quickstart { config } => {
            if !config.exists() {
                write_starter(&config, false)?;
            }
            serve(Some(&config), true)
        }
        Command::Demo { port, app_port } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(demo::run(demo::DemoPorts {
                tracker: port,
                app: app_port,
            })),
        Command::Init { config, force } => {
            write_starter(&config, force)?;
            let settings = Settings::load(Some(&config))?;
            print_keys(&settings);
            Ok(())
        }
        Command::CheckConfig { config } => {
            let settings = Settings::load(config.as_deref())?;
            let definitions = tracker_server::startup::load_definitions(&settings)?;
            tracker_server::startup::build_pipeline(&settings)?;
            print!("{}", toml_string(&settings)?);
            use tracker_server::tracker_core::definitions::DefinitionKind as K;
            let counts: Vec<String> = [
                ("goals", K::Goal),
                ("page events", K::PageEvent),
                ("outcomes", K::Outcome),
                ("campaigns", K::Campaign),
            ]
            .iter()
            .map(|(label, kind)| format!("{} {label}", definitions.list(*kind).len()))
            .collect();
            println!(
                "# configuration is valid; definitions: {}",
                counts.join(", ")
            );
            Ok(())
        }
    }
}

fn toml_string(settings: &Settings) -> anyhow::Result<String> {
    Ok(toml::to_string(settings)?)
}

fn write_starter(config: &Path, force: bool) -> anyhow::Result<()> {
    let dir = config
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let definitions = dir.join("definitions.toml");
    if !force {
        for path in [config, definitions.as_path()] {
            if path.exists() {
                bail!("{} exists; pass --force to overwrite it", path.display());
            }
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 8080));
    std::fs::write(
        config,
        starter_config(&random_token(), &random_token(), listen),
    )
    .with_context(|| format!("writing {}", config.display()))?;
    std::fs::write(
        &definitions,
        tracker_server::tracker_core::definitions::DEFAULT_DEFINITIONS_TOML,
    )
    .with_context(|| format!("writing {}", definitions.display()))?;
    eprintln!("wrote {} and {}", config.display(), definitions.display());
    Ok(())
}

fn print_keys(settings: &Settings) {
    use secrecy::ExposeSecret;
    for key in &settings.api_keys {
        println!(
            "  sc_apikey for '{}': {}",
            key.name,
            key.key.expose_secret()
        );
    }
    if let Some(token) = &settings.admin.token {
        println!("  admin token:        {}", token.expose_secret());
    }
}

fn serve(config: Option<&Path>, show_secrets: bool) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let app = Application::build(settings.clone()).await?;
        print!("{}", banner(&settings, app.local_addr(), app.restored()));
        if show_secrets {
            print_keys(&settings);
            if let Some(key) = settings.api_keys.first() {
                use secrecy::ExposeSecret;
                println!(
                    "  in your JSS app:    trackingApi.trackEvent(events, {{ host: '{}', \
                     querystringParams: {{ sc_apikey: '{}' }}, fetcher }})",
                    tracker_server::startup::browser_host(app.local_addr()),
                    key.key.expose_secret()
                );
            }
        }
        println!("Press Ctrl-C to stop.");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        app.run_until(shutdown_signal()).await
    })
}
