//! The fund as readers see it: the current campaign's figures, rendered once per change, served
//! from memory and pushed to every live subscriber, on every instance.
//!
//! A change made here clears the cache and wakes [`Fund::follow`], which re-reads the figures,
//! publishes them to subscribers and announces the change to other instances. On PostgreSQL
//! [`Fund::listen`] hears those announcements; SQLite runs one instance and the cache's short
//! life catches changes made by the CLI.

pub mod widget;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderValue;
use chrono::NaiveDate;
use chrono_tz::Tz;
use headers::ETag;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::domain::{Campaign, Progress, today_in};
use crate::store::{Store, StoreError};

/// Without announcements from other processes, look again this often.
const FRESH_FOR: Duration = Duration::from_secs(1);
/// While listening to announcements, look again this often anyway, in case one was never sent
/// (an instance that died between its commit and its announcement).
const FRESH_WHILE_LISTENING: Duration = Duration::from_secs(10);
/// Changes that come within this of each other are published, and announced, as one.
const COALESCE: Duration = Duration::from_millis(50);
/// How long to wait before listening again after the connection is lost.
const RELISTEN_AFTER: Duration = Duration::from_millis(250);

/// Bytes served as they are to every reader, with their entity tag.
pub struct Representation {
    pub bytes: Bytes,
    pub etag: ETag,
    pub etag_header: HeaderValue,
}

impl Representation {
    pub fn new(bytes: Bytes) -> Representation {
        let tag = format!("\"{:016x}\"", fnv1a(&bytes));
        // A quoted hex string is always a valid entity tag.
        let etag: ETag = tag.parse().expect("quoted hex is an entity tag");
        let etag_header = HeaderValue::from_str(&tag).unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
        Representation { bytes, etag, etag_header }
    }

    /// The figures as the API serves them.
    pub fn json(progress: &Progress) -> Representation {
        Representation::new(Bytes::from(serde_json::to_vec(progress).unwrap_or_default()))
    }

    /// The entity tag without its quotes: an event id, a version in a URL.
    pub fn tag(&self) -> &str {
        self.etag_header.to_str().unwrap_or_default().trim_matches('"')
    }

    /// The bytes as text; every representation here is UTF-8.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.bytes).unwrap_or_default()
    }
}

/// One campaign's figures, rendered once for every reader: the JSON and the widget page.
pub struct Rendered {
    pub progress: Progress,
    pub json: Representation,
    pub widget: Representation,
}

impl Rendered {
    pub fn new(campaign: &Campaign, today: NaiveDate, donate_url: &str) -> Rendered {
        let progress = campaign.progress(today);
        let json = Representation::json(&progress);
        let widget = Representation::new(widget::page(&progress, donate_url));
        Rendered { progress, json, widget }
    }
}

struct Cached {
    rendered: Arc<Rendered>,
    /// When to read the figures again: soon, or at the fund's next midnight if sooner.
    fresh_until: Instant,
}

pub struct Fund {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    zone: Tz,
    donate_url: String,
    current: RwLock<Option<Cached>>,
    /// Counts the times the figures went stale, so that a read begun before a change is not cached.
    generation: AtomicU64,
    /// The last day the monthly roll-over was checked, so that it runs once a day, not per request.
    rolled_over_on: Mutex<Option<NaiveDate>>,
    /// The latest figures for live subscribers. A watch keeps only the newest value, so a
    /// subscriber that reads slowly skips to it and never makes memory grow.
    live: watch::Sender<Option<Arc<Rendered>>>,
    /// Wakes [`Fund::follow`]: the figures may have changed.
    wake: Notify,
    /// Set by a change made in this process, which the others must hear of.
    changed_here: AtomicBool,
    /// Whether announcements from other instances are being heard.
    listening: AtomicBool,
    /// Names this instance in its announcements, so that it ignores its own.
    instance: String,
}

impl Fund {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, zone: Tz, public_base_url: &str) -> Fund {
        Fund {
            store,
            clock,
            zone,
            donate_url: format!("{}/#donate", public_base_url.trim_end_matches('/')),
            current: RwLock::new(None),
            generation: AtomicU64::new(0),
            rolled_over_on: Mutex::new(None),
            live: watch::Sender::new(None),
            wake: Notify::new(),
            changed_here: AtomicBool::new(false),
            listening: AtomicBool::new(false),
            instance: uuid::Uuid::new_v4().to_string(),
        }
    }

    pub fn today(&self) -> NaiveDate {
        today_in(self.zone, self.clock.now())
    }

    /// The current campaign's figures; `None` when there is no campaign at all.
    ///
    /// Served from memory. Figures past their time are served once more while the publisher
    /// reads them again, so a reader never waits on the database, nor gets an error while it
    /// is down. Only with nothing in memory (at start, or just after a change made here) is
    /// the database read on the reader's time; if that fails, the last figures published do.
    pub async fn current(&self) -> Result<Option<Arc<Rendered>>, StoreError> {
        if let Ok(guard) = self.current.read()
            && let Some(cached) = guard.as_ref()
        {
            if Instant::now() >= cached.fresh_until {
                self.wake.notify_one();
            }
            return Ok(Some(cached.rendered.clone()));
        }
        match self.read_afresh().await {
            Ok(rendered) => Ok(rendered),
            Err(e) => match self.live.borrow().clone() {
                Some(last) => {
                    tracing::warn!(error = %e, "cannot read the fund's figures; serving the last known");
                    Ok(Some(last))
                }
                None => Err(e),
            },
        }
    }

    /// Reads the figures from the database, caches them and hands them to subscribers, unless
    /// they went stale while being read: then the publisher, woken, reads them again.
    async fn read_afresh(&self) -> Result<Option<Arc<Rendered>>, StoreError> {
        let generation = self.generation.load(Ordering::Acquire);
        let now = self.clock.now();
        let today = today_in(self.zone, now);
        self.roll_over_once_a_day(today).await?;
        let Some(campaign) = self.store.current_campaign(today).await? else {
            return Ok(None);
        };
        let rendered = Arc::new(Rendered::new(&campaign, today, &self.donate_url));
        let midnight = today
            .succ_opt()
            .and_then(|tomorrow| tomorrow.and_hms_opt(0, 0, 0))
            .and_then(|t| t.and_local_timezone(self.zone).earliest())
            .and_then(|t| (t.to_utc() - now).to_std().ok())
            .unwrap_or(FRESH_FOR);
        let fresh_for = if self.listening.load(Ordering::Acquire) { FRESH_WHILE_LISTENING } else { FRESH_FOR };
        if let Ok(mut guard) = self.current.write()
            && self.generation.load(Ordering::Acquire) == generation
        {
            *guard = Some(Cached { rendered: rendered.clone(), fresh_until: Instant::now() + fresh_for.min(midnight) });
            self.publish(&rendered);
        }
        Ok(Some(rendered))
    }

    /// The live figures: the receiver sees the newest figures now and after every change.
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<Rendered>>> {
        self.live.subscribe()
    }

    /// How many live subscribers there are.
    pub fn subscribers(&self) -> usize {
        self.live.receiver_count()
    }

    /// Hands new figures to subscribers; the same figures again are not news.
    fn publish(&self, rendered: &Arc<Rendered>) {
        self.live.send_if_modified(|latest| {
            let news = latest.as_ref().is_none_or(|old| old.json.etag_header != rendered.json.etag_header);
            if news {
                *latest = Some(rendered.clone());
            }
            news
        });
    }

    /// A new day may begin a month: its campaign must exist before figures are read or payments counted.
    pub async fn roll_over_once_a_day(&self, today: NaiveDate) -> Result<(), StoreError> {
        if self.rolled_over_on.lock().is_ok_and(|day| *day == Some(today)) {
            return Ok(());
        }
        self.roll_over(today).await?;
        if let Ok(mut day) = self.rolled_over_on.lock() {
            *day = Some(today);
        }
        Ok(())
    }

    /// Creates this month's campaign of every monthly series that needs one; returns their slugs.
    pub async fn roll_over(&self, today: NaiveDate) -> Result<Vec<String>, StoreError> {
        let created = self.store.roll_over_monthly(today, self.clock.now()).await?;
        if !created.is_empty() {
            tracing::info!(?created, "monthly campaigns rolled over");
            self.changed();
        }
        Ok(created)
    }

    /// Any campaign's figures as JSON, read on each request: only the current one has a widget
    /// and a cache.
    pub async fn by_slug(&self, slug: &str) -> Result<Option<Representation>, StoreError> {
        let today = self.today();
        Ok(self.store.campaign(slug).await?.map(|c| Representation::json(&c.progress(today))))
    }

    /// After a change committed by this process: read the figures afresh, here and everywhere.
    pub fn changed(&self) {
        self.changed_here.store(true, Ordering::Release);
        self.stale();
    }

    /// The cached figures may be out of date: forget them and wake the publisher.
    fn stale(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut guard) = self.current.write() {
            *guard = None;
        }
        self.wake.notify_one();
    }

    /// Starts the publisher and, where the engine has one, the listener to other instances.
    pub fn spawn(self: &Arc<Self>, stop: &CancellationToken) -> Vec<JoinHandle<()>> {
        vec![tokio::spawn(self.clone().follow(stop.clone())), tokio::spawn(self.clone().listen(stop.clone()))]
    }

    /// Keeps the figures current for readers and subscribers: after every change, and
    /// periodically for the changes nobody announces (the CLI on SQLite, midnight).
    async fn follow(self: Arc<Self>, stop: CancellationToken) {
        loop {
            let poll = if self.listening.load(Ordering::Acquire) { FRESH_WHILE_LISTENING } else { FRESH_FOR };
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
            if let Err(e) = self.read_afresh().await {
                tracing::warn!(error = %e, "cannot read the fund's figures; subscribers keep the last ones");
            }
            if self.changed_here.swap(false, Ordering::AcqRel)
                && let Err(e) = self.store.announce_fund_changed(&self.instance).await
            {
                tracing::warn!(error = %e, "cannot tell other instances that the figures changed");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(COALESCE) => {}
            }
        }
    }

    /// Hears other instances' changes. After every (re)connection the figures are read again,
    /// since announcements made while the connection was down are lost.
    async fn listen(self: Arc<Self>, stop: CancellationToken) {
        loop {
            match self.store.listen_for_fund_changes().await {
                Ok(None) => return,
                Ok(Some(mut feed)) => {
                    self.listening.store(true, Ordering::Release);
                    self.stale();
                    loop {
                        let next = tokio::select! {
                            () = stop.cancelled() => return,
                            next = feed.next() => next,
                        };
                        match next {
                            Ok(Some(from)) if from == self.instance => {}
                            Ok(Some(_)) => self.stale(),
                            Ok(None) => break,
                            Err(e) => {
                                tracing::warn!(error = %e, "lost the database connection that hears other instances");
                                break;
                            }
                        }
                    }
                    self.listening.store(false, Ordering::Release);
                    self.stale();
                }
                Err(e) => tracing::warn!(error = %e, "cannot listen for other instances' changes"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(RELISTEN_AFTER) => {}
            }
        }
    }
}

/// A small, stable hash: the same bytes give the same tag on every instance.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3))
}
