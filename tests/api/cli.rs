//! The command line: campaigns and offline gifts, and one clear line for every mistake.

use std::collections::HashMap;

use coopfund::domain::EmailAddress;
use coopfund::domain::staff::verify_password;

use crate::helpers::{Engine, NOW, TestDb, ok, refused, run_cli, run_cli_with_input};
use crate::on_both_engines;

on_both_engines!(
    campaigns_are_created_and_listed,
    mistakes_print_one_line_and_change_nothing,
    staff_are_added_with_their_password_kept_only_as_an_argon2id_hash,
    commands_on_a_migrated_database_print_no_database_notices,
);

async fn env(engine: Engine) -> (TestDb, HashMap<&'static str, String>) {
    let db = TestDb::new(engine).await;
    let env = HashMap::from([("DATABASE_URL", db.url.clone()), ("COOPFUND_NOW", NOW.to_owned())]);
    (db, env)
}

async fn campaigns_are_created_and_listed(engine: Engine) {
    let (_db, env) = env(engine).await;
    assert_eq!(ok(run_cli(&env, &["migrate"])).trim(), "database is up to date");
    assert_eq!(ok(run_cli(&env, &["campaign", "list"])), "", "migrate never seeds");
    let created = ok(run_cli(
        &env,
        &[
            "campaign",
            "create",
            "--title",
            "Fighting fund",
            "--target",
            "18000",
            "--starts",
            "2026-11-01",
            "--ends",
            "2026-11-30",
            "--monthly",
        ],
    ));
    assert!(created.starts_with("created fighting-fund-2026-11"), "{created}");
    ok(run_cli(
        &env,
        &[
            "campaign",
            "create",
            "--title",
            "Winter appeal",
            "--target",
            "2500.50",
            "--starts",
            "2026-12-01",
            "--ends",
            "2026-12-24",
            "--slug",
            "winter",
        ],
    ));
    ok(run_cli(
        &env,
        &[
            "gift",
            "add",
            "--campaign",
            "fighting-fund-2026-11",
            "--amount",
            "£1,000",
            "--method",
            "bank_transfer",
            "--date",
            "2026-11-03",
            "--email",
            "reader@example.org",
            "--name",
            "A Reader",
            "--note",
            "cheque 000123",
        ],
    ));
    let list = ok(run_cli(&env, &["campaign", "list"]));
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(
        lines[0].starts_with("winter\tWinter appeal") && lines[0].ends_with("£0 raised of £2,500, opens 1 December"),
        "{list}"
    );
    assert!(lines[1].ends_with("£1,000 raised of £18,000, 13 days remaining"), "{list}");
}

async fn mistakes_print_one_line_and_change_nothing(engine: Engine) {
    let (_db, env) = env(engine).await;
    let create = |args: &[&str]| {
        let mut all = vec!["campaign", "create", "--title", "Fund"];
        all.extend_from_slice(args);
        refused(run_cli(&env, &all))
    };
    assert!(create(&["--target", "100", "--starts", "2026-11-30", "--ends", "2026-11-01"]).contains("end on or after"));
    assert!(create(&["--target", "0", "--starts", "2026-11-01", "--ends", "2026-11-30"]).contains("--target"));
    // Issue 16, item 10: one text rule for every field people see, on the command line too.
    let escape = refused(run_cli(
        &env,
        &[
            "campaign",
            "create",
            "--title",
            "Evil \u{1b}[31mtitle",
            "--target",
            "100",
            "--starts",
            "2026-11-01",
            "--ends",
            "2026-11-30",
        ],
    ));
    assert!(escape.contains("title"), "{escape}");
    ok(run_cli(
        &env,
        &[
            "campaign",
            "create",
            "--title",
            "Cash fund",
            "--target",
            "100",
            "--starts",
            "2026-11-01",
            "--ends",
            "2026-11-30",
        ],
    ));
    for (flag, text) in [("--name", "A\u{1b}[31mB"), ("--note", "x\u{202E}y")] {
        let line = refused(run_cli(
            &env,
            &[
                "gift",
                "add",
                "--campaign",
                "cash-fund",
                "--amount",
                "5",
                "--method",
                "cash",
                "--date",
                "2026-11-16",
                flag,
                text,
            ],
        ));
        assert!(line.contains(flag), "{line}");
    }
    assert_eq!(ok(run_cli(&env, &["campaign", "list"])).lines().count(), 1, "nothing recorded but the campaign");
    assert!(create(&["--target=-5", "--starts", "2026-11-01", "--ends", "2026-11-30"]).contains("--target"));
    assert!(create(&["--target", "100", "--starts", "2026-11-31", "--ends", "2026-12-30"]).contains("--starts"));
    assert!(
        create(&["--target", "100", "--starts", "2026-11-01", "--ends", "2026-11-30", "--slug", "Not A Slug"])
            .contains("slug")
    );
    ok(run_cli(
        &env,
        &["campaign", "create", "--title", "Fund", "--target", "100", "--starts", "2026-11-01", "--ends", "2026-11-30"],
    ));
    assert!(create(&["--target", "100", "--starts", "2026-11-01", "--ends", "2026-11-30"]).contains("already exists"));

    let gift = |args: &[&str]| {
        let mut all = vec!["gift", "add"];
        all.extend_from_slice(args);
        refused(run_cli(&env, &all))
    };
    let good = ["--campaign", "fund", "--amount", "25", "--method", "cheque", "--date", "2026-11-10"];
    let with = |flag: &str, value: &'static str| -> Vec<&'static str> {
        let mut args: Vec<&'static str> = good.to_vec();
        let at = args.iter().position(|a| *a == flag).expect("flag") + 1;
        args[at] = value;
        args
    };
    assert!(gift(&with("--campaign", "no-such-fund")).contains("no-such-fund"));
    assert!(gift(&with("--amount", "12.345")).contains("two decimal places"));
    assert!(gift(&with("--amount", "1e3")).contains("--amount"));
    assert!(gift(&with("--method", "bitcoin")).contains("bitcoin"));
    assert!(gift(&with("--date", "2026-11-18")).contains("future"));
    assert!(gift(&with("--date", "17/11/2026")).contains("--date"));
    let mut bad_email = good.to_vec();
    bad_email.extend_from_slice(&["--email", "not-an-address"]);
    assert!(gift(&bad_email).contains("--email"));

    let list = ok(run_cli(&env, &["campaign", "list"]));
    assert!(list.ends_with("£0 raised of £100, 13 days remaining\n"), "nothing was recorded: {list}");

    let unreadable = HashMap::from([("DATABASE_URL", "sqlite:///nonexistent/dir/coopfund.db?mode=ro".to_owned())]);
    assert!(refused(run_cli(&unreadable, &["campaign", "list"])).contains("database"));
    let invalid = HashMap::from([("DATABASE_URL", "mysql://localhost/x".to_owned())]);
    assert!(refused(run_cli(&invalid, &["migrate"])).contains("DATABASE_URL"));
}

async fn staff_are_added_with_their_password_kept_only_as_an_argon2id_hash(engine: Engine) {
    let (db, env) = env(engine).await;
    let add = |email: &str, role: &str, password: &str| {
        run_cli_with_input(&env, &["staff", "add", "--email", email, "--role", role], &format!("{password}\n"))
    };
    let out = add("Finance@Paper.example", "finance", "correct horse battery staple");
    let printed = ok(out);
    assert_eq!(printed, "added Finance@Paper.example as finance\n");

    let store = coopfund::store::open(&db.url).await.expect("open");
    let address = EmailAddress::parse("finance@paper.example").expect("address");
    let member = store.staff_member(&address).await.expect("read").expect("added, found in any case");
    assert_eq!(member.role, "finance");
    assert!(member.password_hash.starts_with("$argon2id$"), "{}", member.password_hash);
    assert!(verify_password(&member.password_hash, "correct horse battery staple"));

    let again = refused(add("FINANCE@paper.example", "admin", "another long password"));
    assert!(again.contains("already exists"), "{again}");
    let short = refused(add("viewer@paper.example", "viewer", "tiny-pass"));
    assert!(short.contains("at least 12") && !short.contains("tiny-pass"), "{short}");
    assert!(refused(add("viewer@paper.example", "owner", "a long enough password")).contains("--role"));
    assert!(refused(add("not-an-address", "viewer", "a long enough password")).contains("--email"));
    assert!(
        store
            .staff_member(&EmailAddress::parse("viewer@paper.example").expect("address"))
            .await
            .expect("read")
            .is_none()
    );
}

/// On a database already migrated, PostgreSQL's notices (`relation "_sqlx_migrations" already
/// exists, skipping`) stay off stderr: an answer is on stdout, a mistake is one line.
async fn commands_on_a_migrated_database_print_no_database_notices(engine: Engine) {
    let (_db, mut env) = env(engine).await;
    env.insert("RUST_LOG", "info".to_owned());
    for _ in 0..2 {
        let output = run_cli(&env, &["migrate"]);
        assert_eq!(String::from_utf8_lossy(&output.stderr), "", "nothing on stderr");
        assert_eq!(ok(output).trim(), "database is up to date");
    }
    let listed = run_cli(&env, &["campaign", "list"]);
    assert_eq!(String::from_utf8_lossy(&listed.stderr), "");
    let line = refused(run_cli(
        &env,
        &["gift", "add", "--campaign", "none", "--amount", "5", "--method", "cash", "--date", "2026-11-10"],
    ));
    assert!(line.contains("none"), "{line}");
}
