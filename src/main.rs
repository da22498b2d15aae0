//! The `emporium` command: serve, migrate, create-admin.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use emporium::config::{Domain, Settings};
use emporium::domain::auth::{check_password_policy, normalize_email, PasswordHasher, Role};
use emporium::startup::{migrate, Application};
use emporium::{store, telemetry};

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
    /// Create an admin account (the only way to make the first admin).
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long, env = "EMPORIUM_ADMIN_PASSWORD")]
        password: String,
        #[arg(long, default_value = "")]
        name: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(&cli.config)?;
    telemetry::init(&settings.log);
    actix_rt::System::new().block_on(async move {
        match cli.command {
            Command::Serve => serve(settings).await,
            Command::Migrate => {
                migrate(&settings).await?;
                println!("databases migrated (prefix {})", settings.database.prefix);
                Ok(())
            }
            Command::CreateAdmin {
                email,
                password,
                name,
            } => create_admin(settings, &email, &password, &name).await,
        }
    })
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings.clone(), true).await?;
    let address = format!("http://{}:{}", settings.http.host, app.port());
    tracing::info!(%address, prefix = %settings.database.prefix, "emporium listening");
    println!("emporium listening on {address}");
    app.run_until_stopped().await
}

async fn create_admin(
    settings: Settings,
    email: &str,
    password: &str,
    name: &str,
) -> anyhow::Result<()> {
    let email = normalize_email(email).map_err(|e| anyhow::anyhow!("email: {}", e.message))?;
    check_password_policy("password", password)
        .map_err(|e| anyhow::anyhow!("password: {}", e.message))?;
    migrate(&settings).await?;
    let pool = store::database::lazy_pool(&settings.database, Domain::Auth)?;
    let hash = PasswordHasher::new()?.hash(password)?;
    let result =
        store::auth::insert_user(&pool, &email, &hash, name.trim(), Role::Admin.as_str()).await;
    pool.close().await;
    match result {
        Ok(user) => {
            println!("created admin {} ({})", user.email, user.id);
            Ok(())
        }
        Err(sqlx::Error::Database(e)) if e.constraint() == Some(store::auth::USERS_EMAIL_KEY) => {
            anyhow::bail!("an account with email {email} already exists; an admin can promote it with PATCH /api/v1/auth/users/{{id}}/")
        }
        Err(e) => Err(e).context("creating the admin"),
    }
}
