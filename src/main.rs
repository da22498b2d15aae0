//! The `emporium` command: serve, migrate, create-admin.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use emporium::commands::recommend_eval;
use emporium::commands::{create_admin, seed_demo, SeedSize};
use emporium::config::Settings;
use emporium::startup::{migrate, Application};
use emporium::telemetry;

#[derive(Parser)]
#[command(
    name = "emporium",
    version,
    about = "E-commerce backend as an actor cluster"
)]
struct Cli {
    /// Configuration file; EMPORIUM__SECTION__KEY variables override it.
    #[arg(
        long,
        global = true,
        default_value = "config.toml",
        env = "EMPORIUM_CONFIG"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create missing databases, migrate them, and serve the API.
    Serve,
    /// Create missing databases and migrate them, then exit.
    Migrate,
    /// Fill the catalog with a deterministic demo catalog.
    SeedDemo {
        /// How many products to make.
        #[arg(long, default_value_t = 1000)]
        products: usize,
        /// How many demo customers (with delivered orders) to make.
        #[arg(long, default_value_t = 200)]
        customers: usize,
        /// How many orders each demo customer has.
        #[arg(long, default_value_t = 5)]
        orders_per_customer: usize,
        /// Seed of the generator; the same seed gives the same data.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Evaluate every recommendation method and the served blend offline:
    /// each user's last order held out, the rest trained on. Prints one
    /// JSON object.
    RecommendEval {
        /// CSV with a header and columns user_id, order_id, order_number,
        /// product_id (others ignored).
        #[arg(long, conflicts_with = "from_db")]
        interactions: Option<PathBuf>,
        /// CSV with product_id and any of category (a/b/c), tags (x|y), price.
        #[arg(long, requires = "interactions")]
        products: Option<PathBuf>,
        /// Use the shop's own databases instead of files.
        #[arg(long)]
        from_db: bool,
        /// Cut-off of the ranking metrics.
        #[arg(long, default_value_t = 10)]
        k: usize,
        /// Evaluate at most this many held-out users, spread evenly over
        /// all of them (default: every one).
        #[arg(long)]
        max_users: Option<usize>,
    },
    /// Create an admin account (the only way to make the first admin).
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long, env = "EMPORIUM_ADMIN_PASSWORD")]
        password: String,
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Print the OpenAPI 3.1 document of the API (the one served at
    /// /api/v1/openapi.json); needs no configuration or database.
    Openapi,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Openapi = cli.command {
        println!("{}", emporium::http::openapi::document_json());
        return Ok(());
    }
    let settings = Settings::load(&cli.config)?;
    let provider = match settings.observability.otlp_endpoint.as_deref() {
        Some(endpoint) => Some(telemetry::trace::otlp_provider(endpoint)?),
        None => None,
    };
    let _traces = telemetry::init_with(&settings.log, provider);
    actix_rt::System::new().block_on(async move {
        match cli.command {
            Command::Serve => serve(settings).await,
            Command::Migrate => {
                migrate(&settings).await?;
                println!("databases migrated (prefix {})", settings.database.prefix);
                Ok(())
            }
            Command::SeedDemo {
                products,
                customers,
                orders_per_customer,
                seed,
            } => {
                let size = SeedSize {
                    products,
                    customers,
                    orders_per_customer,
                };
                let started = std::time::Instant::now();
                let report = seed_demo(&settings, size, seed).await?;
                println!(
                    "seeded {} categories, {} new products, {} new customers, {} new orders, {} new stock locations, {} new shipping and tax rules (seed {seed}) in {:.1} s",
                    report.categories, report.products_inserted, report.customers_inserted, report.orders_inserted, report.locations_inserted, report.rules_inserted,
                    started.elapsed().as_secs_f64()
                );
                Ok(())
            }
            Command::RecommendEval {
                interactions,
                products,
                from_db,
                k,
                max_users,
            } => {
                anyhow::ensure!(k >= 1, "--k must be at least 1");
                let data = match (interactions, from_db) {
                    (Some(file), _) => recommend_eval::load_csv(&file, products.as_deref())?,
                    (None, true) => recommend_eval::load_db(&settings).await?,
                    (None, false) => anyhow::bail!(
                        "say what to evaluate: --interactions FILE.csv [--products FILE.csv], or --from-db"
                    ),
                };
                anyhow::ensure!(
                    !data.orders.is_empty(),
                    "no orders to evaluate; seed some with `emporium seed-demo` or check the file"
                );
                let report = recommend_eval::run(&data, k, max_users);
                println!("{}", serde_json::to_string_pretty(&report)?);
                Ok(())
            }
            Command::CreateAdmin {
                email,
                password,
                name,
            } => {
                let id = create_admin(&settings, &email, &password, &name).await?;
                println!("created admin {email} ({id})");
                Ok(())
            }
            Command::Openapi => Ok(()),
        }
    })
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings.clone(), true).await?;
    let address = format!("http://{}:{}", settings.http.host, app.port());
    tracing::info!(%address, prefix = %settings.database.prefix, "emporium listening");
    println!("emporium listening on {address}");
    if let Some(port) = app.metrics_port() {
        let host = &settings.observability.metrics_host;
        println!("metrics on http://{host}:{port}/metrics");
    }
    app.run_until_stopped().await
}
