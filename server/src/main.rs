//! The `chalktalk` binary: `serve` runs a node, `token` mints dev tokens,
//! `migrate` applies schema migrations, `account` manages accounts, `bench` runs the benchmarks. Media jobs run
//! in the separate `chalktalk-media` binary (media/src/main.rs), so this
//! one never links FFmpeg. Errors end here as anyhow reports.

use std::path::PathBuf;

use anyhow::Context;
use chalktalk::config::{Config, LogFormat, Settings};
use chalktalk_protocol::Role;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "chalktalk",
    version,
    about = "Realtime backend for video coaching"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node (embedded store by default).
    Serve {
        #[command(flatten)]
        settings: Settings,
        /// Optional TOML file with the same keys as the flags.
        #[arg(long, env = "CHALKTALK_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Mint an access token signed with the server's secret.
    Token {
        #[arg(long)]
        user: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 86_400)]
        ttl: u64,
        #[command(flatten)]
        settings: Settings,
        #[arg(long, env = "CHALKTALK_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Applies pending schema migrations to the configured store
    /// (`CHALKTALK_STORE`); nothing to do for the embedded store.
    Migrate {
        #[command(flatten)]
        settings: Settings,
        #[arg(long, env = "CHALKTALK_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Accounts (run while the node is stopped).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Stripe: `backfill` lists the events the webhook never delivered
    /// (and with `--apply` stores and applies them).
    #[command(subcommand)]
    Payments(PaymentsCommand),
    /// Moving and counting a deployment's records (run with the source's
    /// nodes stopped).
    #[command(subcommand)]
    Store(StoreCommand),
    /// Benchmarks: runs `chalktalk-bench` (beside this binary) with these
    /// arguments; each prints one JSON object (see docs/BENCHMARKS.md).
    #[command(disable_help_flag = true)]
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copies every record from one store into another and verifies each
    /// (resumable: run it again after an interruption). A store is
    /// `embedded:DIR` or `postgres://user@host[:port]/db`.
    Copy {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
    },
    /// Counts the records of a store, by kind.
    Count {
        #[arg(long)]
        store: String,
    },
}

#[derive(Subcommand)]
enum PaymentsCommand {
    /// Lists Stripe events (`GET /v1/events`, newest first) that no stored
    /// webhook receipt holds; prints one JSON object. With the embedded
    /// store, run it while the node is stopped.
    Backfill {
        /// Store and apply them (once per event id, as the webhook would).
        #[arg(long)]
        apply: bool,
        /// List at most this many events.
        #[arg(long, default_value_t = 10_000)]
        max: usize,
        #[command(flatten)]
        settings: Settings,
        #[arg(long, env = "CHALKTALK_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Creates an account (admins only this way); reads the password from
    /// the first line of standard input and prints the new user id.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[command(flatten)]
        settings: Settings,
        #[arg(long, env = "CHALKTALK_CONFIG")]
        config: Option<PathBuf>,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    match s {
        "coach" => Ok(Role::Coach),
        "athlete" => Ok(Role::Athlete),
        "admin" => Ok(Role::Admin),
        _ => Err("expected coach, athlete or admin".into()),
    }
}

fn init_logs(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("CHALKTALK_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
        LogFormat::Text => builder.init(),
    }
}

fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Bench { args } = cli.command {
        return bench(args);
    }
    raise_fd_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    match cli.command {
        Command::Serve { settings, config } => {
            let config = Config::resolve(&settings, config.as_deref())?;
            init_logs(config.log_format);
            rt.block_on(async {
                let running = chalktalk::server::start(&config).await?;
                println!("chalktalk listening on {}", running.addr);
                shutdown_signal().await;
                tracing::info!("shutting down");
                running.shutdown().await;
                anyhow::Ok(())
            })
        }
        Command::Token {
            user,
            role,
            ttl,
            settings,
            config,
        } => {
            let config = Config::resolve(&settings, config.as_deref())?;
            let auth = chalktalk_services::auth::Auth::from_config(
                config.jwt_secret.as_deref(),
                &config.data_dir,
            )?;
            println!("{}", auth.mint(&user, role, ttl)?);
            Ok(())
        }
        Command::Migrate { settings, config } => {
            let config = Config::resolve(&settings, config.as_deref())?;
            println!("{}", rt.block_on(chalktalk::migrate::run(&config))?);
            Ok(())
        }
        Command::Account(AccountCommand::Create {
            email,
            role,
            settings,
            config,
        }) => {
            let config = Config::resolve(&settings, config.as_deref())?;
            let id = rt.block_on(chalktalk::account_cli::create_account(
                &config, &email, role,
            ))?;
            println!("{id}");
            Ok(())
        }
        Command::Payments(PaymentsCommand::Backfill {
            apply,
            max,
            settings,
            config,
        }) => {
            let config = Config::resolve(&settings, config.as_deref())?;
            let done = rt.block_on(chalktalk::payments_cli::backfill(&config, apply, max))?;
            println!("{}", serde_json::to_string(&done)?);
            Ok(())
        }
        Command::Store(StoreCommand::Copy { from, to }) => {
            let done = rt.block_on(chalktalk::store_copy::run_copy(&from, &to))?;
            println!(
                "copied and verified: {}",
                chalktalk::store_copy::describe(&done)
            );
            Ok(())
        }
        Command::Store(StoreCommand::Count { store }) => {
            let s = rt.block_on(chalktalk::store_copy::run_count(&store))?;
            println!("{}", chalktalk::store_copy::describe(&s));
            Ok(())
        }
        Command::Bench { .. } => Ok(()),
    }
}

/// `chalktalk bench …`: replaces this process with `chalktalk-bench …`
/// (the benches are a crate of their own, bench/).
fn bench(args: Vec<std::ffi::OsString>) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = chalktalk_services::binaries::sibling(chalktalk_services::binaries::BENCH);
    let err = std::process::Command::new(&exe).args(args).exec();
    Err(anyhow::anyhow!(err)).with_context(|| {
        format!(
            "running {} (build it: cargo build --release --bin chalktalk-bench)",
            exe.display()
        )
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
