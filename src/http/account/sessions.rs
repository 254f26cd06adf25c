//! tower-sessions' store for readers' sessions, in their own table on our database, so that
//! any instance serves any request and a reader's session never opens the staff area.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

use crate::store::Store;

#[derive(Clone)]
pub struct ReaderSessions(pub Arc<dyn Store>);

impl std::fmt::Debug for ReaderSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReaderSessions")
    }
}

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

fn encode(record: &Record) -> session_store::Result<(String, DateTime<Utc>)> {
    let data = serde_json::to_string(record).map_err(|e| session_store::Error::Encode(e.to_string()))?;
    let expires = DateTime::from_timestamp(record.expiry_date.unix_timestamp(), 0).unwrap_or_default();
    Ok((data, expires))
}

#[async_trait]
impl SessionStore for ReaderSessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // Ids are 128 random bits; a collision is all but impossible, and never overwrites.
        loop {
            let (data, expires) = encode(record)?;
            if self.0.save_reader_session(&record.id.to_string(), &data, expires, true).await.map_err(backend)? {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let (data, expires) = encode(record)?;
        self.0.save_reader_session(&record.id.to_string(), &data, expires, false).await.map_err(backend)?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let Some(data) = self.0.reader_session(&id.to_string(), Utc::now()).await.map_err(backend)? else {
            return Ok(None);
        };
        serde_json::from_str(&data).map(Some).map_err(|e| session_store::Error::Decode(e.to_string()))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.0.delete_reader_session(&id.to_string()).await.map_err(backend)
    }
}
