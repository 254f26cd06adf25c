//! Reconciliation: Stripe's record of payments and refunds against the ledger's.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use crate::domain::{CountedPayment, Pence, StripePayment};

/// Every difference, one line each, for payments made since `from`.
///
/// Both lists should reach a day further back than `from`, so that a payment on the
/// boundary is found on both sides. Payments match by PaymentIntent, which every gift and share
/// purchase has, and a supporter's invoice has once its `invoice_payment.paid` came; an invoice
/// still without one is compared as part of its supporter's total.
pub fn differences(stripe: &[StripePayment], ledger: &[CountedPayment], from: DateTime<Utc>) -> Vec<String> {
    let mut out = Vec::new();
    let counted: HashMap<&str, &CountedPayment> =
        ledger.iter().flat_map(|p| p.references.iter().chain([&p.payment]).map(move |r| (r.as_str(), p))).collect();
    let at_stripe: HashMap<&str, &StripePayment> = stripe.iter().map(|p| (p.payment.as_str(), p)).collect();
    let found_at_stripe =
        |p: &CountedPayment| p.references.iter().chain([&p.payment]).any(|r| at_stripe.contains_key(r.as_str()));
    let is_invoice = |p: &CountedPayment| p.payment.starts_with("in_") && !found_at_stripe(p);
    let mut supporters: BTreeMap<&str, (Pence, Pence)> = BTreeMap::new();

    for s in stripe {
        match counted.get(s.payment.as_str()) {
            Some(c) => {
                if c.amount != s.amount && s.created >= from {
                    out.push(format!("{}: Stripe took {}, the ledger counted {}", s.payment, s.amount, c.amount));
                }
                if c.refunded != s.refunded && s.created >= from {
                    out.push(format!("{}: Stripe refunded {}, the ledger {}", s.payment, s.refunded, c.refunded));
                }
            }
            None => match &s.customer {
                Some(customer) if ledger.iter().any(|c| is_invoice(c) && c.customer.as_ref() == Some(customer)) => {
                    let totals = supporters.entry(customer).or_default();
                    totals.0 = totals.0 + net(s.amount, s.refunded);
                }
                _ if s.created >= from => out.push(format!(
                    "{}: {} at Stripe on {} is not in the ledger",
                    s.payment,
                    s.amount,
                    s.created.format("%Y-%m-%d")
                )),
                _ => {}
            },
        }
    }
    for c in ledger {
        if is_invoice(c) {
            if let Some(customer) = &c.customer {
                let totals = supporters.entry(customer).or_default();
                totals.1 = totals.1 + net(c.amount, c.refunded);
            }
        } else if !found_at_stripe(c) && c.paid_at >= from {
            out.push(format!(
                "{}: {} in the ledger on {} is not at Stripe",
                c.payment,
                c.amount,
                c.paid_at.format("%Y-%m-%d")
            ));
        }
    }
    for (customer, (stripe_total, ledger_total)) in supporters {
        if stripe_total != ledger_total {
            out.push(format!(
                "supporter {customer}: Stripe took {stripe_total} net, the ledger counted {ledger_total}"
            ));
        }
    }
    out
}

fn net(amount: Pence, refunded: Pence) -> Pence {
    amount - refunded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: &str) -> DateTime<Utc> {
        format!("{day}T12:00:00Z").parse().expect("instant")
    }

    fn stripe(payment: &str, amount: i64, refunded: i64, customer: Option<&str>, day: &str) -> StripePayment {
        StripePayment {
            payment: payment.into(),
            amount: Pence(amount),
            refunded: Pence(refunded),
            customer: customer.map(Into::into),
            created: at(day),
        }
    }

    fn counted(payment: &str, amount: i64, refunded: i64, customer: Option<&str>, day: &str) -> CountedPayment {
        CountedPayment {
            payment: payment.into(),
            references: vec![payment.into()],
            amount: Pence(amount),
            refunded: Pence(refunded),
            customer: customer.map(Into::into),
            paid_at: at(day),
        }
    }

    #[test]
    fn matching_records_have_no_differences() {
        let s = [stripe("pi_1", 2500, 1000, None, "2026-11-15"), stripe("pi_2", 500, 0, Some("cus_1"), "2026-11-15")];
        let c = [counted("pi_1", 2500, 1000, None, "2026-11-15"), counted("in_1", 500, 0, Some("cus_1"), "2026-11-15")];
        assert_eq!(differences(&s, &c, at("2026-11-14")), Vec::<String>::new());
    }

    /// Issue 15, fault 5: an invoice whose PaymentIntent is known matches that payment alone.
    #[test]
    fn a_supporters_invoice_matches_its_payment_intent() {
        let s = [stripe("pi_sup", 500, 200, Some("cus_1"), "2026-11-15")];
        let mut invoice = counted("in_1", 500, 200, Some("cus_1"), "2026-11-15");
        invoice.references.push("pi_sup".into());
        assert_eq!(differences(&s, &[invoice.clone()], at("2026-11-14")), Vec::<String>::new());
        invoice.refunded = Pence(0);
        assert_eq!(differences(&s, &[invoice], at("2026-11-14")), ["pi_sup: Stripe refunded £2.00, the ledger £0.00"]);
    }

    #[test]
    fn each_kind_of_difference_is_named() {
        let s = [
            stripe("pi_missing", 1000, 0, None, "2026-11-15"),
            stripe("pi_refund", 2500, 2500, None, "2026-11-15"),
            stripe("pi_sup", 500, 0, Some("cus_1"), "2026-11-15"),
            stripe("pi_old", 700, 0, None, "2026-11-01"),
        ];
        let c = [
            counted("pi_refund", 2500, 1000, None, "2026-11-15"),
            counted("pi_extra", 300, 0, None, "2026-11-16"),
            counted("in_1", 500, 0, Some("cus_1"), "2026-11-15"),
            counted("in_2", 500, 0, Some("cus_1"), "2026-11-15"),
        ];
        let found = differences(&s, &c, at("2026-11-14"));
        assert_eq!(
            found,
            [
                "pi_missing: £10.00 at Stripe on 2026-11-15 is not in the ledger",
                "pi_refund: Stripe refunded £25.00, the ledger £10.00",
                "pi_extra: £3.00 in the ledger on 2026-11-16 is not at Stripe",
                "supporter cus_1: Stripe took £5.00 net, the ledger counted £10.00",
            ]
        );
    }
}
