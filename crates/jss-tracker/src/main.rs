#![doc = include_str!("../README.md")]

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{bail, Context};

mod demo;

/// mimalloc instead of glibc's malloc: under ingest load glibc's allocator (`_int_malloc`,
/// `_int_free`, `malloc_consolidate`) was about a tenth of the server's CPU samples.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand};
use tracker_server::{
    config::{random_token, starter_config, ConfigError, ListenAddr, ServerSettings},
    startup::{bind, shutdown_signal},
    Settings,
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
        // (help text as an attribute: rustdoc would read the IPv6 example as a link)
        #[arg(
            long,
            value_name = "ADDR",
            value_parser = parse_listen,
            help = "Where to listen, overriding server.listen: 127.0.0.1:8080, [::]:8080, localhost:8080; port 0 picks a free port"
        )]
        listen: Option<ListenAddr>,
    },
    /// Write a starter configuration if there is none, print the API key, and run the tracker.
    Quickstart {
        /// The configuration file to use or create.
        #[arg(long, short, default_value = "tracker.toml")]
        config: PathBuf,
        /// Where to listen, overriding server.listen (see `serve --help`).
        #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
        listen: Option<ListenAddr>,
    },
    /// Try it: a throwaway tracker (temporary database, tracker enabled, a demo API key) and, on
    /// a second port, a page that tracks into it with the real JSS `trackingApi`.
    Demo {
        /// Where the tracker listens (see `serve --help`); default 127.0.0.1:8080.
        #[arg(long, value_name = "ADDR", value_parser = parse_listen, conflicts_with = "port")]
        listen: Option<ListenAddr>,
        /// The tracker's port on 127.0.0.1 (0: any free port); a shorthand for --listen.
        #[arg(long)]
        port: Option<u16>,
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
    /// Print an Argon2 hash of a password, for a `[[profile.users]]` entry. The password is
    /// asked for without echo, or read from standard input when it is not a terminal.
    HashPassword,
    /// Erase a contact (the right to erasure): its identifiers, devices, interactions and
    /// events; the dashboard's counts stay. With the embedded store the server must be
    /// stopped (or use `DELETE /api/v1/contacts/{id}` on the running server).
    EraseContact {
        /// The contact's id (a GUID).
        id: String,
        /// The configuration file (default: ./tracker.toml if present).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Load and validate the configuration and definitions, then print the effective settings
    /// (secrets redacted) and what `serve` would warn about.
    CheckConfig {
        /// The configuration file (default: ./tracker.toml if present).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Also say which file or environment variable set each setting that is not a default.
        #[arg(long)]
        show: bool,
    },
}

fn parse_listen(text: &str) -> Result<ListenAddr, String> {
    let listen = ListenAddr::from(text);
    listen.resolve().map(|_| listen)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            report(&error);
            ExitCode::FAILURE
        }
    }
}

/// Prints an error for a person: each configuration problem on its own line, anything else as
/// one line with each cause said once; never a backtrace, whatever `RUST_BACKTRACE` says.
fn report(error: &anyhow::Error) {
    if let Some(config) = error.downcast_ref::<ConfigError>() {
        if !config.problems().is_empty() {
            for problem in config.problems() {
                eprintln!("error: {problem}");
            }
            return;
        }
    }
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
    }
    eprintln!("error: {}", parts.join(": "));
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve {
            config,
            init,
            listen,
        } => {
            if init {
                let path = config.unwrap_or_else(|| PathBuf::from("tracker.toml"));
                return first_run(&path, listen, false);
            }
            serve(config.as_deref(), listen, false)
        }
        Command::Quickstart { config, listen } => first_run(&config, listen, true),
        Command::Demo {
            listen,
            port,
            app_port,
        } => {
            let tracker = match (listen, port) {
                (Some(listen), _) => listen,
                (None, Some(port)) => SocketAddr::from(([127, 0, 0, 1], port)).into(),
                (None, None) => ServerSettings::default().listen,
            };
            runtime()?.block_on(demo::run(demo::DemoAddrs { tracker, app_port }))
        }
        Command::Init { config, force } => {
            write_starter(&config, force, None)?;
            let settings = Settings::load(Some(&config))?;
            print_keys(&settings);
            Ok(())
        }
        Command::HashPassword => {
            let password = if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                rpassword::prompt_password("password: ")?
            } else {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                line.trim_end_matches(['\r', '\n']).to_string()
            };
            if password.is_empty() {
                bail!("the password is empty");
            }
            let hash = tracker_server::sign_in::hash_password(&password)
                .map_err(|error| anyhow::anyhow!("hashing the password: {error}"))?;
            println!("{hash}");
            Ok(())
        }
        Command::EraseContact { id, config } => erase_contact(&id, config.as_deref()),
        Command::CheckConfig { config, show } => check_config(config.as_deref(), show),
    }
}

/// `erase-contact`: erases one contact, as the admin API's DELETE does.
fn erase_contact(id: &str, config: Option<&Path>) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    let contact = uuid::Uuid::try_parse(id.trim_matches(['{', '}']))
        .map(tracker_server::tracker_core::ids::ContactId)
        .map_err(|_| anyhow::anyhow!("'{id}' is not a contact id (a GUID)"))?;
    let runtime = runtime()?;
    runtime.block_on(async {
        let store = jss_tracker::application()
            .backends()
            .store_config(&settings)?
            .build()
            .await?;
        match store.erase_contact(contact).await? {
            Some(erased) => {
                println!(
                    "erased contact {contact}: {} interactions, {} events, {} devices, {} identifiers",
                    erased.interactions, erased.events, erased.devices, erased.identifiers
                );
                store.drain().await?;
                Ok(())
            }
            None => bail!("no contact {contact}"),
        }
    })
}

/// `check-config`: the effective configuration, who set what, the pipeline in order.
fn check_config(config: Option<&Path>, show: bool) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    let definitions = tracker_server::startup::load_definitions(&settings)?;
    let application = jss_tracker::application();
    application.backends().check(&settings)?;
    let (_, pipeline) =
        tracker_server::startup::build_pipeline(&settings, application.processor_types())?;
    print!("{}", toml_string(&settings)?);
    if show {
        println!("# set by (every setting not at its default):");
        for (key, source) in &settings.sources {
            println!("#   {key}: {source}");
        }
    }
    println!("# the trackEvent pipeline, in order (name, type, set by):");
    for processor in &pipeline {
        println!(
            "#   {} ({}, {})",
            processor.name, processor.kind, processor.source
        );
    }
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
    for warning in settings.warnings(None) {
        eprintln!("warning: {warning}");
    }
    Ok(())
}

/// Serves with `config`, writing a starter one first if there is none. The port is bound
/// before anything is written: a taken port leaves no files behind.
fn first_run(config: &Path, listen: Option<ListenAddr>, show_secrets: bool) -> anyhow::Result<()> {
    if config.exists() {
        return serve(Some(config), listen, show_secrets);
    }
    let listen = match listen {
        Some(listen) => listen,
        None => Settings::load_without_file()?.server.listen,
    };
    let listener = runtime()?
        .block_on(async { bind(&listen).await?.into_std().map_err(anyhow::Error::from) })?;
    write_starter(config, false, Some(&listen))?;
    serve_on(Some(config), listener, show_secrets)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn toml_string(settings: &Settings) -> anyhow::Result<String> {
    Ok(toml::to_string(settings)?)
}

/// Writes the starter `tracker.toml` and `definitions.toml`; `listen` goes into the file unless
/// it asks for any free port.
fn write_starter(config: &Path, force: bool, listen: Option<&ListenAddr>) -> anyhow::Result<()> {
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
    let default = ServerSettings::default().listen;
    let listen = listen
        .filter(|l| l.resolve().is_ok_and(|addr| addr.port() != 0))
        .unwrap_or(&default);
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

fn serve(
    config: Option<&Path>,
    listen: Option<ListenAddr>,
    show_secrets: bool,
) -> anyhow::Result<()> {
    let mut settings = Settings::load(config)?;
    if let Some(listen) = listen {
        settings.server.listen = listen;
    }
    let runtime = runtime()?;
    let listener = runtime.block_on(bind(&settings.server.listen))?;
    run_server(runtime, settings, listener, show_secrets)
}

fn serve_on(
    config: Option<&Path>,
    listener: std::net::TcpListener,
    show_secrets: bool,
) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    let runtime = runtime()?;
    let listener = {
        let _entered = runtime.enter();
        tokio::net::TcpListener::from_std(listener)?
    };
    run_server(runtime, settings, listener, show_secrets)
}

fn run_server(
    runtime: tokio::runtime::Runtime,
    settings: Settings,
    listener: tokio::net::TcpListener,
    show_secrets: bool,
) -> anyhow::Result<()> {
    runtime.block_on(async {
        let app = jss_tracker::application()
            .listener(listener)
            .build(settings.clone())
            .await?;
        print!("{}", app.banner());
        if show_secrets {
            print_keys(&settings);
            if let Some(key) = settings.api_keys.first() {
                use secrecy::ExposeSecret;
                let host = tracker_server::startup::browser_host(app.local_addr());
                let key = key.key.expose_secret();
                println!(
                    "  in your JSS app:    trackingApi.trackEvent(events, {{ host: '{host}', \
                     querystringParams: {{ sc_apikey: '{key}' }}, fetcher }})"
                );
                print!("{}", next_steps(&settings, &host, key));
            }
        }
        println!("Press Ctrl-C to stop.");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        app.run_until(shutdown_signal()).await
    })
}

/// The user agent of the quickstart's `curl` commands: a browser's, so that they are stored.
const QUICKSTART_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) jss-tracker-quickstart";

/// What to do next, ready to paste: track a page view (keeping the visitor's cookies in a jar),
/// end the visit, and list what was stored.
fn next_steps(settings: &Settings, host: &str, key: &str) -> String {
    use secrecy::ExposeSecret;
    let prefix = &settings.tracker.service_prefix;
    let mut out = String::from(
        "Try it from another terminal (the cookie jar keeps you one visitor; -A makes curl a \
         browser, since robots, curl among them, are not stored):\n",
    );
    out.push_str(&format!(
        "  curl -sS -A '{QUICKSTART_AGENT}' -c cookies.txt -b cookies.txt -H 'Content-Type: application/json' \
         --data '[{{\"pageId\":\"{{110D559F-DEA5-42EA-9C1C-8A5DF7E70EF9}}\",\"url\":\"/\"}},{{\"goalId\":\"Register\"}}]' \
         '{host}{prefix}/event?sc_apikey={key}'\n"
    ));
    out.push_str(&format!(
        "  curl -sS -A '{QUICKSTART_AGENT}' -c cookies.txt -b cookies.txt -X POST '{host}{prefix}/flush?sc_apikey={key}'\n"
    ));
    if let Some(token) = &settings.admin.token {
        out.push_str(&format!(
            "  curl -sS -H 'Authorization: Bearer {}' '{host}/api/v1/contacts'\n",
            token.expose_secret()
        ));
    }
    out
}
