//! Forms as people (and their browsers' extensions) post them: a field sent twice
//! (`amount=5&amount=10`) is a mistake to show on the form beside that field, like any other,
//! not a plain-text "Failed to deserialize form body".

use std::collections::HashSet;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

use super::error::Framed;
use crate::domain::FieldErrors;

/// What a field sent more than once is told.
const ONE_VALUE: &str = "This was sent more than once: enter one value";

/// What a field whose value is not text (not UTF-8) is told.
const NOT_TEXT: &str = "Some of this could not be read as text: type it again";

/// A form's fields as `T` (each from its first value), and the fields of `T` that were sent
/// more than once or whose value is not UTF-8; a form whose unreadable field is not one of
/// `T`'s is refused whole with a 422 page. Use in place of axum's `Form`; pass what the form's parser says through
/// [`Repeated::check`].
pub struct Fields<T>(pub T, pub Repeated);

/// The fields of a form that were sent more than once or were not UTF-8, each with its error.
#[derive(Debug, Default)]
pub struct Repeated(FieldErrors);

impl Repeated {
    /// `parsed`, or its errors with the repeated fields' added: a form with a repeated field
    /// is refused even if its first values would do.
    ///
    /// # Errors
    /// The field errors of `parsed` and of every repeated field.
    pub fn check<V>(&self, parsed: Result<V, FieldErrors>) -> Result<V, FieldErrors> {
        match parsed {
            Ok(value) if self.0.is_empty() => Ok(value),
            Ok(_) => Err(self.0.clone()),
            Err(mut errors) => {
                errors.extend(self.0.iter().map(|(k, v)| (*k, v.clone())));
                Err(errors)
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<S, T> FromRequest<S> for Fields<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        let body = Bytes::from_request(request, state).await.map_err(IntoResponse::into_response)?;
        let names = field_names::<T>();
        let mut seen = HashSet::new();
        let mut firsts = url::form_urlencoded::Serializer::new(String::new());
        let mut repeated = FieldErrors::new();
        for (name, value) in url::form_urlencoded::parse(&body) {
            if seen.contains(&name) {
                if let Some(field) = names.iter().find(|field| **field == name) {
                    repeated.insert(*field, ONE_VALUE.to_owned());
                }
            } else {
                firsts.append_pair(&name, &value);
                seen.insert(name);
            }
        }
        for bad in not_utf8(&body) {
            match bad.and_then(|name| names.iter().find(|field| **field == name)) {
                Some(field) => {
                    repeated.insert(*field, NOT_TEXT.to_owned());
                }
                None => return Err(not_understood("a field name or value is not UTF-8")),
            }
        }
        match serde_urlencoded::from_str(&firsts.finish()) {
            Ok(form) => Ok(Fields(form, Repeated(repeated))),
            Err(e) => Err(not_understood(&e.to_string())),
        }
    }
}

/// The page for a form that cannot be read at all, with a 422; `why` goes to the log only.
fn not_understood(why: &str) -> Response {
    tracing::info!(error = why, "unreadable form");
    let text = "The form could not be read. Go back, reload the page and try again.";
    Framed::new("Form not understood", text, ("/", "Go to the fighting fund"))
        .response(StatusCode::UNPROCESSABLE_ENTITY)
}

/// For each field of a form body whose name or value is not UTF-8 once percent-decoded
/// (`name=Carol%FFMember`), its name, or `None` when the name itself cannot be read. Such a
/// value is refused, never stored with replacement characters.
fn not_utf8(body: &[u8]) -> Vec<Option<String>> {
    let decoded = |part: &[u8]| -> Vec<u8> {
        let spaced: Vec<u8> = part.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
        percent_encoding::percent_decode(&spaced).collect()
    };
    body.split(|b| *b == b'&')
        .filter_map(|pair| {
            let mut parts = pair.splitn(2, |b| *b == b'=');
            let name = String::from_utf8(decoded(parts.next().unwrap_or_default()));
            let value_is_text = std::str::from_utf8(&decoded(parts.next().unwrap_or_default())).is_ok();
            match name {
                Ok(_) if value_is_text => None,
                Ok(name) => Some(Some(name)),
                Err(_) => Some(None),
            }
        })
        .collect()
}

/// The names of a struct's fields, as serde's derive lists them; empty for anything else.
fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut names: &'static [&'static str] = &[];
    // The probe only notes what it is asked for; the error it then returns is expected.
    let _ = T::deserialize(FieldNameProbe(&mut names));
    names
}

/// A deserializer that records the field names a struct asks for, and produces nothing.
struct FieldNameProbe<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldNameProbe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only a struct's field names are probed"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("field names noted"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Gift {
        amount: String,
        name: Option<String>,
    }

    async fn fields(body: &'static str) -> Fields<Gift> {
        let request = Request::builder().body(axum::body::Body::from(body)).expect("request");
        Fields::<Gift>::from_request(request, &()).await.expect("readable")
    }

    #[tokio::test]
    async fn a_repeated_field_is_an_error_beside_it_and_the_first_value_is_kept() {
        assert_eq!(field_names::<Gift>(), ["amount", "name"]);
        let Fields(gift, repeated) = fields("amount=5&amount=10&other=1&other=2&name=Jo").await;
        assert_eq!((gift.amount.as_str(), gift.name.as_deref()), ("5", Some("Jo")));
        let refused = repeated.check(Ok::<_, FieldErrors>(()));
        assert_eq!(refused, Err(FieldErrors::from([("amount", ONE_VALUE.to_owned())])), "unknown fields are ignored");
        let Fields(_, once) = fields("amount=5").await;
        assert!(once.is_empty() && once.check(Ok::<_, FieldErrors>(1)) == Ok(1));
    }

    #[tokio::test]
    async fn a_value_that_is_not_utf8_is_an_error_beside_its_field() {
        let Fields(_, bad) = fields("amount=5&name=Carol%FFMember").await;
        let refused = bad.check(Ok::<_, FieldErrors>(()));
        assert_eq!(refused, Err(FieldErrors::from([("name", NOT_TEXT.to_owned())])));
        let Fields(_, good) = fields("amount=5&name=Caf%C3%A9+Jo%EF%BF%BD").await;
        assert!(good.is_empty(), "UTF-8, even U+FFFD itself, is text");
        let request = Request::builder().body(axum::body::Body::from("amount=5&n%FF=1")).expect("request");
        let whole = Fields::<Gift>::from_request(request, &()).await.err().expect("refused");
        assert_eq!(whole.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
