//! The fund as readers see it: the current campaign's figures, rendered once and served from memory.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderValue;
use chrono::NaiveDate;
use chrono_tz::Tz;
use headers::ETag;

use crate::clock::Clock;
use crate::domain::{Campaign, Progress, today_in};
use crate::store::{Store, StoreError};

/// Another process (the CLI, another instance) may change the figures: look again this often.
const FRESH_FOR: Duration = Duration::from_secs(1);

/// One campaign's figures, with the JSON bytes and ETag that every request shares.
pub struct Rendered {
    pub progress: Progress,
    pub json: Bytes,
    pub etag: ETag,
    pub etag_header: HeaderValue,
}

impl Rendered {
    pub fn new(campaign: &Campaign, today: NaiveDate) -> Rendered {
        let progress = campaign.progress(today);
        let json = Bytes::from(serde_json::to_vec(&progress).unwrap_or_default());
        let tag = format!("\"{:016x}\"", fnv1a(&json));
        // A quoted hex string is always a valid entity tag.
        let etag: ETag = tag.parse().expect("quoted hex is an entity tag");
        let etag_header = HeaderValue::from_str(&tag).unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
        Rendered { progress, json, etag, etag_header }
    }
}

struct Cached {
    rendered: Arc<Rendered>,
    /// A second from rendering, or the fund's next midnight if sooner: days remaining change then.
    fresh_until: Instant,
}

pub struct Fund {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    zone: Tz,
    current: RwLock<Option<Cached>>,
    /// The last day the monthly roll-over was checked, so that it runs once a day, not per request.
    rolled_over_on: Mutex<Option<NaiveDate>>,
}

impl Fund {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, zone: Tz) -> Fund {
        Fund { store, clock, zone, current: RwLock::new(None), rolled_over_on: Mutex::new(None) }
    }

    pub fn today(&self) -> NaiveDate {
        today_in(self.zone, self.clock.now())
    }

    /// The current campaign's figures; `None` when there is no campaign at all.
    pub async fn current(&self) -> Result<Option<Arc<Rendered>>, StoreError> {
        if let Ok(guard) = self.current.read()
            && let Some(cached) = guard.as_ref()
            && Instant::now() < cached.fresh_until
        {
            return Ok(Some(cached.rendered.clone()));
        }
        let now = self.clock.now();
        let today = today_in(self.zone, now);
        self.roll_over_once_a_day(today).await?;
        let Some(campaign) = self.store.current_campaign(today).await? else {
            return Ok(None);
        };
        let rendered = Arc::new(Rendered::new(&campaign, today));
        let midnight = today
            .succ_opt()
            .and_then(|tomorrow| tomorrow.and_hms_opt(0, 0, 0))
            .and_then(|t| t.and_local_timezone(self.zone).earliest())
            .and_then(|t| (t.to_utc() - now).to_std().ok())
            .unwrap_or(FRESH_FOR);
        if let Ok(mut guard) = self.current.write() {
            *guard = Some(Cached { rendered: rendered.clone(), fresh_until: Instant::now() + FRESH_FOR.min(midnight) });
        }
        Ok(Some(rendered))
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

    pub async fn by_slug(&self, slug: &str) -> Result<Option<Rendered>, StoreError> {
        let today = self.today();
        Ok(self.store.campaign(slug).await?.map(|c| Rendered::new(&c, today)))
    }

    /// Forget the cached figures after a change made by this process.
    pub fn changed(&self) {
        if let Ok(mut guard) = self.current.write() {
            *guard = None;
        }
    }
}

/// A small, stable hash: the same bytes give the same tag on every instance.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3))
}
