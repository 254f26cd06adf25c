//! Pure types and rules of the fund: no I/O, no HTTP, no SQL.

pub mod account;
pub mod campaign;
pub mod chart;
pub mod donation;
pub mod email;
pub mod gift;
pub mod money;
pub mod monthly;
pub mod notice;
pub mod payment;
pub mod shares;
pub mod staff;
pub mod supporter;
pub mod table;

pub use campaign::{Campaign, CampaignError, CampaignKind, NewCampaign, Progress, Status};
pub use donation::{DonationForm, FieldErrors, Frequency, NewDonation, form_date, gift_amount, given, ticked};
pub use email::{EmailAddress, EmailError, mask_addresses};
pub use gift::{GiftEntry, GiftMethod, GiftReference, GiftRefused, OfflineGift, OfflineGiftForm};
pub use money::{AmountError, Pence, parse_amount};
pub use notice::Notice;
pub use payment::{CountedPayment, DisputeStage, EventOutcome, PaymentEvent, ReceivedEvent, StripePayment};
pub use shares::{JoinForm, NewShareApplication, PostalAddress, RegisterEntry, ShareRules};
pub use staff::{PasswordError, Role};
pub use supporter::{
    Decline, DeclineReason, Ending, PaymentFailure, SubscriptionChange, SubscriptionTerms, Supporter, SupporterNote,
    SupporterStatus,
};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

/// The calendar date at `now` in the fund's time zone: the day on which gifts count.
pub fn today_in(zone: Tz, now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&zone).date_naive()
}

/// The instant `day` begins in `zone`: midnight there, or the first moment after a gap.
pub fn start_of_day(zone: Tz, day: NaiveDate) -> DateTime<Utc> {
    use chrono::TimeZone;
    let midnight = day.and_time(chrono::NaiveTime::MIN);
    (0..4)
        .find_map(|hour| zone.from_local_datetime(&(midnight + chrono::Duration::hours(hour))).earliest())
        .map_or_else(|| midnight.and_utc(), |t| t.to_utc())
}
