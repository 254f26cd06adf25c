//! The command line of SPEC §2: one function per subcommand.

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use crate::config::Config;
use crate::domain::gift::counts_at;
use crate::domain::shares::register_csv;
use crate::domain::staff::hash_password;
use crate::domain::{
    CampaignKind, EmailAddress, GiftEntry, GiftMethod, GiftReference, GiftRefused, NewCampaign, OfflineGift, Role,
    parse_amount, today_in,
};
use crate::jobs::reconcile::differences;
use crate::payments::PaymentGateway;
use crate::payments::stripe::StripeGateway;
use crate::store::{self, Actor, Store};

#[derive(Parser)]
#[command(name = "coopfund", version, about = "The fighting fund, supporters and members of a readers' co-operative")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve the site, the API and the webhooks (the default)
    Serve,
    /// Bring the database schema up to date, and nothing else
    Migrate,
    /// Create and list fund campaigns
    #[command(subcommand)]
    Campaign(CampaignCommand),
    /// Record gifts that arrive outside Stripe
    #[command(subcommand)]
    Gift(GiftCommand),
    /// Give staff their accounts
    #[command(subcommand)]
    Staff(StaffCommand),
    /// The register of members
    #[command(subcommand)]
    Register(RegisterCommand),
    /// Compare Stripe's record of payments and refunds with the ledger; exits 1 on any difference
    Reconcile {
        /// How many days back to look
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=366))]
        days: u16,
    },
}

#[derive(Subcommand)]
pub enum CampaignCommand {
    /// Create a campaign
    Create(CreateCampaign),
    /// List every campaign with its figures
    List,
}

#[derive(Args)]
pub struct CreateCampaign {
    #[arg(long)]
    title: String,
    /// Pounds, e.g. 18000 or 18000.00; a share issue may have none
    #[arg(long)]
    target: Option<String>,
    /// First day on which gifts count, YYYY-MM-DD
    #[arg(long)]
    starts: NaiveDate,
    /// Last day on which gifts count, YYYY-MM-DD; a share issue may have none
    #[arg(long)]
    ends: Option<NaiveDate>,
    /// Defaults to the title's, with the month for a monthly campaign
    #[arg(long)]
    slug: Option<String>,
    /// Roll over by itself into each following month
    #[arg(long)]
    monthly: bool,
    /// `shares` for a share issue with its own ticker; it never counts gifts
    #[arg(long, value_enum, default_value_t = CampaignKind::Donations)]
    kind: CampaignKind,
}

#[derive(Subcommand)]
pub enum StaffCommand {
    /// Add a member of staff; the password is read from the first line of standard input
    Add(AddStaff),
}

#[derive(Args)]
pub struct AddStaff {
    #[arg(long)]
    email: String,
    #[arg(long, value_parser = ["viewer", "finance", "admin"])]
    role: String,
}

#[derive(Subcommand)]
pub enum RegisterCommand {
    /// Write the register of members as CSV on standard output
    Export,
}

#[derive(Subcommand)]
pub enum GiftCommand {
    /// Record a gift received by cheque, phone, standing order, cash or bank transfer
    Add(AddGift),
}

#[derive(Args)]
pub struct AddGift {
    /// The campaign's slug
    #[arg(long)]
    campaign: String,
    /// Pounds and pence, e.g. 25.00
    #[arg(long)]
    amount: String,
    #[arg(long, value_enum)]
    method: GiftMethod,
    /// The day it was received, YYYY-MM-DD
    #[arg(long)]
    date: NaiveDate,
    #[arg(long)]
    email: Option<String>,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    note: Option<String>,
    /// The paper's own reference, e.g. the cheque number: running the command again with the
    /// same reference and method records nothing more, and says the gift was already recorded
    #[arg(long)]
    reference: Option<String>,
}

pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => crate::app::serve(config).await,
        Command::Migrate => migrate(&config).await,
        Command::Campaign(CampaignCommand::Create(args)) => create_campaign(&config, args).await,
        Command::Campaign(CampaignCommand::List) => list_campaigns(&config).await,
        Command::Gift(GiftCommand::Add(args)) => add_gift(&config, args).await,
        Command::Staff(StaffCommand::Add(args)) => add_staff(&config, args).await,
        Command::Register(RegisterCommand::Export) => export_register(&config).await,
        Command::Reconcile { days } => reconcile(&config, days).await,
    }
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    store::open(&config.database_url).await?;
    println!("database is up to date");
    Ok(())
}

async fn create_campaign(config: &Config, args: CreateCampaign) -> anyhow::Result<()> {
    let target = args.target.as_deref().map(parse_amount).transpose().map_err(|e| anyhow::anyhow!("--target: {e}"))?;
    let campaign =
        NewCampaign::parse(args.kind, &args.title, target, args.starts, args.ends, args.slug.as_deref(), args.monthly)?;
    let store = store::open(&config.database_url).await?;
    let created = store.create_campaign(&campaign, &Actor::command_line(), config.clock().now()).await?;
    announce(store.as_ref()).await;
    let ends = created.ends_on.map_or_else(|| "no last day".to_owned(), |d| d.to_string());
    let target = created.target.map_or_else(|| "none".to_owned(), |t| t.to_string());
    println!("created {} ({} to {ends}, target {target})", created.slug, created.starts_on);
    Ok(())
}

/// Tells running instances to show the change now; without it they see it within seconds.
async fn announce(store: &dyn Store) {
    if let Err(e) = store.announce_fund_changed("cli").await {
        tracing::warn!(error = %e, "cannot tell running instances that the figures changed");
    }
}

async fn list_campaigns(config: &Config) -> anyhow::Result<()> {
    let store = store::open(&config.database_url).await?;
    let today = today_in(config.fund_timezone, config.clock().now());
    for campaign in store.campaigns().await? {
        let p = campaign.progress(today);
        let ends = p.ends_on.map(|d| d.to_string()).unwrap_or_default();
        println!("{}\t{}\t{}..{ends}\t{}", p.slug, p.title, p.starts_on, p.summary);
    }
    Ok(())
}

/// Records an offline gift through the same domain rules as the staff page. A re-run with a
/// `--reference` already recorded prints one line and changes nothing: exit 0 when it names the
/// same campaign and amount (a re-run), 1 when they differ (a mistyped reference).
async fn add_gift(config: &Config, args: AddGift) -> anyhow::Result<()> {
    let amount = parse_amount(&args.amount).map_err(|e| anyhow::anyhow!("--amount: {e}"))?;
    let email =
        args.email.as_deref().map(EmailAddress::parse).transpose().map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let reference = match args.reference.as_deref() {
        Some(typed) => GiftReference::typed(args.method, typed).map_err(|e| anyhow::anyhow!("--reference: {e}"))?,
        None => GiftReference::fresh(),
    };
    let clock = config.clock();
    let zone = config.fund_timezone;
    let store = store::open(&config.database_url).await?;
    let Some(campaign) = store.campaign(&args.campaign).await? else {
        anyhow::bail!("--campaign: there is no campaign {:?}", args.campaign);
    };
    let entry = GiftEntry {
        amount,
        method: args.method,
        received_on: args.date,
        email,
        name: args.name.filter(|n| !n.trim().is_empty()),
        note: args.note.filter(|n| !n.trim().is_empty()),
        reference,
    };
    let gift = OfflineGift::new(&campaign, entry, today_in(zone, clock.now())).map_err(|e| match e {
        GiftRefused::NotAFund(_) => anyhow::anyhow!("--campaign: {e}"),
        GiftRefused::NothingGiven => anyhow::anyhow!("--amount: {e}"),
        GiftRefused::InTheFuture => anyhow::anyhow!("--date: {} is in the future", args.date),
        GiftRefused::Unreadable { field, problem } => anyhow::anyhow!("--{field}: {problem}"),
    })?;
    let counted_at = counts_at(args.date, zone);
    let recorded = store.record_offline_gift(&gift, counted_at, &Actor::command_line(), clock.now()).await?;
    let what = format!("{} by {} for {}", recorded.amount, args.method.as_str(), recorded.campaign);
    if recorded.new {
        announce(store.as_ref()).await;
        println!("recorded {what} ({})", recorded.reference);
    } else if (recorded.amount, recorded.campaign.as_str()) == (amount, campaign.slug.as_str()) {
        println!("already recorded {what} ({}): nothing changed", recorded.reference);
    } else {
        anyhow::bail!("--reference: {} is already recorded as {what}; nothing changed", recorded.reference);
    }
    Ok(())
}

async fn add_staff(config: &Config, args: AddStaff) -> anyhow::Result<()> {
    let email = EmailAddress::parse(&args.email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let role = Role::parse(&args.role).ok_or_else(|| anyhow::anyhow!("--role: viewer, finance or admin"))?;
    // From a pipe or a terminal: never an argument, which `ps` and shell history would keep.
    let mut password = String::new();
    std::io::stdin().read_line(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']);
    let hash = hash_password(password).map_err(|e| anyhow::anyhow!("password: {e}"))?;
    let store = store::open(&config.database_url).await?;
    store.add_staff(&email, &hash, role, &Actor::command_line(), config.clock().now()).await?;
    println!("added {email} as {}", role.as_str());
    Ok(())
}

async fn export_register(config: &Config) -> anyhow::Result<()> {
    use std::io::Write;
    let store = store::open(&config.database_url).await?;
    let csv = register_csv(&store.register().await?)?;
    std::io::stdout().lock().write_all(&csv)?;
    Ok(())
}

async fn reconcile(config: &Config, days: u16) -> anyhow::Result<()> {
    let Some(stripe) = &config.stripe else {
        anyhow::bail!("STRIPE_SECRET_KEY is unset: the demo gateway keeps no record to reconcile with");
    };
    let gateway = StripeGateway::new(stripe, &config.public_base_url)?;
    let from = config.clock().now() - chrono::Duration::days(i64::from(days));
    // A day's margin on both sides, so that a payment on the boundary is found in both records.
    let margin = from - chrono::Duration::days(1);
    let at_stripe = gateway.payments_since(margin).await?.unwrap_or_default();
    let store = store::open(&config.database_url).await?;
    let counted = store.counted_payments(margin).await?;
    let differences = differences(&at_stripe, &counted, from);
    for difference in &differences {
        println!("{difference}");
    }
    if !differences.is_empty() {
        anyhow::bail!(
            "{} differences between Stripe and the ledger since {}",
            differences.len(),
            from.format("%Y-%m-%d %H:%M UTC")
        );
    }
    println!(
        "no differences: {} payments at Stripe and {} in the ledger since {}",
        at_stripe.len(),
        counted.len(),
        from.format("%Y-%m-%d %H:%M UTC")
    );
    Ok(())
}
