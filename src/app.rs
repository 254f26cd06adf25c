//! Builds the state and router, spawns the background work, and shuts down gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tower::Service;

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::today_in;
use crate::fund::Fund;
use crate::http;
use crate::http::LoginKey;
use crate::http::limits::{PASSWORD_CHECKS_AT_ONCE, PasswordChecks};
use crate::jobs;
use crate::mail::Transport;
use crate::mail::outbox::Outbox;
use crate::payments::PaymentGateway;
use crate::payments::demo::DemoGateway;
use crate::payments::ingest::EventQueue;
use crate::payments::stripe::StripeGateway;
use crate::store::{self, StaffArea, Store};

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
    /// Verified webhook events on their way to the ledger, applied in batches.
    pub events: EventQueue,
    /// Cancelled at shutdown: long-lived responses (event streams) end with it.
    pub shutdown: CancellationToken,
    /// Signs the staff login form's CSRF cookie.
    pub login_key: LoginKey,
    /// Turns to hash or check a password.
    pub password_checks: PasswordChecks,
    /// One permit per live-update stream: at most [`Shared::live_stream_cap`] at once.
    pub live_streams: Arc<Semaphore>,
    pub live_stream_cap: usize,
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
    let listener = TcpListener::bind(config.app_addr)
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
    let live_stream_cap = live_stream_cap(config.live_max_streams);
    let login_key = LoginKey::load(store.as_ref()).await.context("DATABASE_URL: cannot read the shared keys")?;
    let config = Arc::new(config);
    let outbox_wake = Arc::new(Notify::new());
    let stop = CancellationToken::new();
    let events = EventQueue::start(store.clone(), clock.clone());
    let state = AppState(Arc::new(Shared {
        config: config.clone(),
        store: store.clone(),
        clock,
        fund,
        gateway,
        outbox_wake: outbox_wake.clone(),
        events,
        shutdown: stop.clone(),
        login_key,
        password_checks: PasswordChecks::new(PASSWORD_CHECKS_AT_ONCE),
        live_streams: Arc::new(Semaphore::new(live_stream_cap)),
        live_stream_cap,
    }));

    let router = http::router(state.clone());
    let server = tokio::spawn(serve_http(listener, router, config.header_timeout, stop.clone()));
    let mut tasks = state.fund.spawn(&stop);
    tasks.extend([
        server,
        jobs::rollover::spawn(state.clone(), stop.clone()),
        jobs::parked::spawn(state.clone(), stop.clone()),
        jobs::retention::spawn(state.clone(), stop.clone()),
        jobs::demo_endings::spawn(state.clone(), stop.clone()),
        spawn_purge(store.clone(), stop.clone()),
        Outbox::new(store, transport, config, outbox_wake).spawn(stop.clone()),
    ]);
    tracing::info!("listening on http://{addr}");
    Ok(Running { addr, state, stop, tasks })
}

/// Serves HTTP/1.1 with hyper's own timers (SPEC §9): a client has `header_timeout` to send a
/// request's headers, and the same timer closes a keep-alive connection that sends nothing
/// for that long, so that idle and trickling sockets cannot pile up. At `stop`, stops accepting,
/// lets each connection finish the request in flight, and waits for them.
async fn serve_http(listener: TcpListener, router: Router, header_timeout: Duration, stop: CancellationToken) {
    // HTTP/1 only, so that hyper's header timer runs from the first byte: a builder that also
    // spoke HTTP/2 would first wait, without a timer, for bytes that tell the two apart.
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout);
    let mut connections = JoinSet::new();
    loop {
        // Connections that have ended are let go of as new ones come.
        while connections.try_join_next().is_some() {}
        let (socket, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most likely: let some close before trying again.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Small responses go out at once rather than waiting for an acknowledgement.
        let _ = socket.set_nodelay(true);
        let router = router.clone();
        // The peer's address limits failed staff logins per address.
        let service = TowerToHyperService::new(tower::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().call(request)
        }));
        let connection = builder.serve_connection(TokioIo::new(socket), service).into_owned();
        let stop = stop.clone();
        connections.spawn(async move {
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            // A client that goes away, or is too slow with its headers, is no error of ours.
            if let Err(e) = ended {
                tracing::debug!(error = %e, "connection closed");
            }
        });
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// File descriptors kept for everything but live streams: requests, the database, SMTP, logs.
const FD_HEADROOM: u64 = 256;

/// `LIVE_MAX_STREAMS`, lowered if the process may not open that many sockets and still have
/// room for other requests: a stream holds one open until the reader leaves (SPEC §9).
fn live_stream_cap(configured: usize) -> usize {
    let Ok(limit) = rustix::process::getrlimit(rustix::process::Resource::Nofile).current.ok_or(()) else {
        return configured;
    };
    // A quarter of the descriptors, and at least FD_HEADROOM, stay for the rest.
    let room = limit.saturating_sub((limit / 4).max(FD_HEADROOM));
    let cap = usize::try_from(room).map_or(configured, |room| configured.min(room));
    if cap < configured {
        tracing::warn!(
            configured,
            cap,
            open_files = limit,
            "LIVE_MAX_STREAMS lowered to leave room under the open-file limit"
        );
    }
    cap
}

/// How often expired sessions and old attempts are deleted.
const PURGE_EVERY: Duration = Duration::from_secs(10 * 60);
/// Attempts older than this are deleted: far older than any limit's window.
const KEEP_ATTEMPTS: chrono::Duration = chrono::Duration::days(1);

/// Deletes expired staff sessions and old attempts now and then, so that neither table grows
/// with what strangers send (SPEC §8).
fn spawn_purge(store: Arc<dyn StaffArea>, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PURGE_EVERY);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = every.tick() => {}
            }
            // Expiry is real time, whatever the business clock says.
            let now = chrono::Utc::now();
            if let Err(e) = store.purge_expired(now, now - KEEP_ATTEMPTS).await {
                tracing::warn!(error = %e, "cannot purge expired sessions and attempts; will try again");
            }
        }
    })
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
