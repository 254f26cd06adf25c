//! Builds the state and router, spawns the background work, and shuts down gracefully.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::today_in;
use crate::fund::Fund;
use crate::http;
use crate::jobs;
use crate::mail::Transport;
use crate::mail::outbox::Outbox;
use crate::payments::PaymentGateway;
use crate::payments::demo::DemoGateway;
use crate::payments::stripe::StripeGateway;
use crate::store::{self, Store};

/// What every handler and background task shares; cloned for every request, so one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub fund: Arc<Fund>,
    pub gateway: Arc<dyn PaymentGateway>,
    /// Wakes the outbox worker when a payment has written an email.
    pub outbox_wake: Arc<Notify>,
    /// Cancelled at shutdown: long-lived responses (event streams) end with it.
    pub shutdown: CancellationToken,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// A service that is listening; stop it with [`Running::stop`].
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, lets requests in flight finish, and waits for the background work.
    pub async fn stop(self) {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Opens the database (migrating and seeding it), binds the address and starts serving.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let clock = config.clock();
    if let Some(now) = config.now {
        tracing::warn!(%now, "COOPFUND_NOW is set: the business clock is fixed. Never do this in production");
    }
    crate::metrics::handle();
    let store = store::open(&config.database_url).await.context("DATABASE_URL: cannot open the database")?;
    let today = today_in(config.fund_timezone, clock.now());
    if store.seed_demo_campaign(today, clock.now()).await? {
        tracing::info!("no campaign yet: seeded the demo fighting fund for this month");
    }
    let fund = Arc::new(Fund::new(store.clone(), clock.clone(), config.fund_timezone, config.public_base_url.as_str()));
    let listener = tokio::net::TcpListener::bind(config.app_addr)
        .await
        .with_context(|| format!("APP_ADDR: cannot listen on {}", config.app_addr))?;
    let addr = listener.local_addr()?;
    let gateway: Arc<dyn PaymentGateway> = match &config.stripe {
        Some(stripe) => Arc::new(StripeGateway::new(stripe, &config.public_base_url).context("STRIPE_SECRET_KEY")?),
        None => {
            tracing::info!("STRIPE_SECRET_KEY is unset: payments go through the demo gateway and no money moves");
            Arc::new(DemoGateway::new())
        }
    };
    let transport = Transport::from_config(&config)?;
    let config = Arc::new(config);
    let outbox_wake = Arc::new(Notify::new());
    let stop = CancellationToken::new();
    let state = AppState(Arc::new(Shared {
        config: config.clone(),
        store: store.clone(),
        clock,
        fund,
        gateway,
        outbox_wake: outbox_wake.clone(),
        shutdown: stop.clone(),
    }));

    let router = http::router(state.clone());
    let server_stop = stop.clone();
    let server = tokio::spawn(async move {
        let shutdown = async move { server_stop.cancelled().await };
        // The peer's address limits failed staff logins per address.
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, service).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, "server stopped");
        }
    });
    let mut tasks = state.fund.spawn(&stop);
    tasks.extend([
        server,
        jobs::rollover::spawn(state.clone(), stop.clone()),
        jobs::parked::spawn(state.clone(), stop.clone()),
        Outbox::new(store, transport, config, outbox_wake).spawn(stop.clone()),
    ]);
    tracing::info!("listening on http://{addr}");
    Ok(Running { addr, state, stop, tasks })
}

/// `coopfund serve`: runs until SIGTERM or Ctrl-C.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let running = start(config).await?;
    shutdown_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    running.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
