//! Tables as CSV files (RFC 4180, UTF-8, CRLF), the way spreadsheets and auditors read them.

/// A header and rows as CSV bytes.
pub fn to_csv<R, F>(header: &[&str], rows: R) -> Result<Vec<u8>, csv::Error>
where
    R: IntoIterator,
    R::Item: IntoIterator<Item = F>,
    F: AsRef<[u8]>,
{
    let mut out = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    out.write_record(header)?;
    for row in rows {
        out.write_record(row)?;
    }
    out.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}
