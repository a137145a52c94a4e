//! The subscription business behind the churn data set: who the customers
//! are, when they are billed, when a payment fails, when they cancel and
//! whether they come back.
//!
//! Each customer has a hidden *propensity* to leave: the sum of a latent
//! dissatisfaction (never written anywhere) and the effects of what the
//! data does show: a dearer plan, a paid acquisition channel, youth. Every
//! month, on the billing date, the customer cancels with probability
//! `sigmoid(BASE + propensity + tenure effect + payment failure effects)`.
//! Two failed payments in a row often end the subscription outright
//! (involuntary churn). About 30% of those who cancel come back one to four
//! months later.
//!
//! The same propensity shapes behaviour (fewer sessions, more support calls,
//! more hovers over the cancel link: see `clickstream`), and so do the
//! *moods* recorded here: most customers who cancel spend their last three
//! to seven weeks visibly [`Mood::Leaving`], some customers wobble without
//! leaving, and a failed payment brings a few days of billing trouble.

use chrono::{Datelike, Days, Months, NaiveDate};
use rand::rngs::StdRng;

use super::random::{between, chance, normal, pick, stream_rng};

/// Random stream of a customer's attributes and billing history.
const CUSTOMER_STREAM: u64 = 1;

/// Monthly cancellation log-odds of a customer with zero propensity
/// (about 9% a month).
const BASE_LOG_ODDS: f64 = -2.3;
/// Weight of the latent dissatisfaction (a standard normal) in the propensity.
const LATENT_WEIGHT: f64 = 0.7;
/// Share of customers who signed up before the history window.
const OLD_CUSTOMER_SHARE: f64 = 0.35;
/// How far before the history window the oldest customers signed up.
const OLDEST_SIGNUP_MONTHS: u32 = 24;
/// Share of cancellers who subscribe again, one to four months later.
const RESTART_SHARE: f64 = 0.30;
/// Share of voluntary cancellers whose behaviour changes before they leave.
const VOCAL_LEAVER_SHARE: f64 = 0.85;

/// Plans: name, list price (before regional pricing), share of customers.
const PLANS: [((&str, f64), f64); 3] = [
    (("basic", 10.0), 0.45),
    (("standard", 16.0), 0.35),
    (("premium", 23.0), 0.20),
];
/// Regions: name, price multiplier, share of customers.
const REGIONS: [((&str, f64), f64); 4] = [
    (("north_america", 1.0), 0.42),
    (("europe", 1.0), 0.30),
    (("latin_america", 0.6), 0.16),
    (("asia_pacific", 0.8), 0.12),
];
/// Acquisition channels: name, propensity effect, share of customers.
const CHANNELS: [((&str, f64), f64); 4] = [
    (("organic", 0.0), 0.40),
    (("paid_search", 0.45), 0.30),
    (("referral", -0.35), 0.15),
    (("partner", 0.2), 0.15),
];

/// One customer and everything that happened to them up to `as_of`.
#[derive(Debug, Clone)]
pub(crate) struct Customer {
    pub(crate) id: i64,
    pub(crate) signup_date: NaiveDate,
    pub(crate) plan: &'static str,
    pub(crate) monthly_price: f64,
    pub(crate) region: &'static str,
    pub(crate) age: Option<i32>,
    pub(crate) acquisition_channel: &'static str,
    /// Hidden log-odds added to every month's cancellation; also drives
    /// behaviour. Around 0 on average, higher leaves sooner.
    pub(crate) propensity: f64,
    /// Billing rows in date order, none after `as_of`.
    pub(crate) bills: Vec<Bill>,
    /// Periods of service, in order.
    pub(crate) spells: Vec<Spell>,
    /// Periods of unusual behaviour (in no particular order, may overlap).
    pub(crate) moods: Vec<MoodSpan>,
}

/// One row of the billing table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bill {
    pub(crate) date: NaiveDate,
    pub(crate) amount: f64,
    pub(crate) payment_failed: bool,
    /// The last bill of a subscription spell: the customer cancels this month.
    pub(crate) cancelled_service: bool,
    /// The first bill of a subscription spell (signup or restart).
    pub(crate) new_customer: bool,
}

/// A period of service: from the first bill of a spell to the end of the
/// month paid by its last bill (`NaiveDate::MAX` while ongoing).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Spell {
    pub(crate) start: NaiveDate,
    pub(crate) end: NaiveDate,
}

/// How a customer behaves on a day. Later variants win where periods overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Mood {
    /// Nothing special.
    Content,
    /// Cancelled, still has service until the paid month ends.
    Gone,
    /// Unhappy for a while, but stays.
    Wobbling,
    /// Just had a payment fail.
    PaymentTrouble,
    /// Has decided to cancel.
    Leaving,
}

/// A mood over days `from..until`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MoodSpan {
    pub(crate) from: NaiveDate,
    pub(crate) until: NaiveDate,
    pub(crate) mood: Mood,
}

impl Customer {
    /// The customer's mood on `day`, or `None` when they have no service.
    pub(crate) fn mood_on(&self, day: NaiveDate) -> Option<Mood> {
        if !self.spells.iter().any(|s| s.start <= day && day < s.end) {
            return None;
        }
        let mood = self
            .moods
            .iter()
            .filter(|m| m.from <= day && day < m.until)
            .map(|m| m.mood)
            .max()
            .unwrap_or(Mood::Content);
        Some(mood)
    }

    /// Whether the customer has service on any day of `from..until`.
    pub(crate) fn has_service_during(&self, from: NaiveDate, until: NaiveDate) -> bool {
        self.spells.iter().any(|s| s.start < until && from < s.end)
    }
}

/// Simulates customer `id` from signup (up to `OLDEST_SIGNUP_MONTHS` before
/// `history_start`) to `as_of`.
pub(crate) fn simulate_customer(
    seed: u64,
    id: i64,
    history_start: NaiveDate,
    as_of: NaiveDate,
) -> Customer {
    let mut rng = stream_rng(seed, CUSTOMER_STREAM, id as u64);
    let (plan, list_price) = *pick(&mut rng, &PLANS);
    let (region, price_factor) = *pick(&mut rng, &REGIONS);
    let (acquisition_channel, channel_effect) = *pick(&mut rng, &CHANNELS);
    let monthly_price = (list_price * price_factor).round() - 0.01;
    let age = (!chance(&mut rng, 0.05))
        .then(|| (38.0 + 13.0 * normal(&mut rng)).round().clamp(18.0, 85.0) as i32);
    let latent = normal(&mut rng);
    let propensity = LATENT_WEIGHT * latent + channel_effect + plan_effect(plan) + age_effect(age);
    let signup_date = signup_date(&mut rng, history_start, as_of);

    let mut customer = Customer {
        id,
        signup_date,
        plan,
        monthly_price,
        region,
        age,
        acquisition_channel,
        propensity,
        bills: Vec::new(),
        spells: Vec::new(),
        moods: Vec::new(),
    };
    simulate_billing(&mut rng, &mut customer, latent, as_of);
    customer
}

/// Bills, spells and moods, month by month, from the signup date.
fn simulate_billing(rng: &mut StdRng, customer: &mut Customer, latent: f64, as_of: NaiveDate) {
    let failure_rate = if chance(rng, 0.12) { 0.20 } else { 0.025 } * (0.25 * latent).exp();
    let promo = matches!(customer.acquisition_channel, "paid_search" | "partner");
    let wobble_rate = 0.05 * (0.5 * latent).exp();
    let mut spell_start = customer.signup_date;
    let mut restarts = 0;
    'spells: loop {
        let mut previous_failed = false;
        for month in 0.. {
            let date = add_months(spell_start, month);
            if date > as_of {
                if month > 0 {
                    customer.spells.push(Spell {
                        start: spell_start,
                        end: NaiveDate::MAX,
                    });
                }
                break 'spells;
            }
            let failed = chance(rng, failure_rate);
            let log_odds = BASE_LOG_ODDS
                + customer.propensity
                + tenure_effect(month)
                + if failed { 0.5 } else { 0.0 }
                + if previous_failed { 0.8 } else { 0.0 }
                + if restarts > 0 { 0.3 } else { 0.0 };
            let involuntary = failed && previous_failed && chance(rng, 0.6);
            let cancelled = involuntary || chance(rng, super::random::sigmoid(log_odds));
            let amount = if month == 0 && promo {
                round_cents(customer.monthly_price * 0.5)
            } else {
                customer.monthly_price
            };
            customer.bills.push(Bill {
                date,
                amount,
                payment_failed: failed,
                cancelled_service: cancelled,
                new_customer: month == 0,
            });
            if failed {
                customer.moods.push(span(date, 0, 10, Mood::PaymentTrouble));
            }
            if cancelled {
                let end = add_months(date, 1);
                customer.spells.push(Spell {
                    start: spell_start,
                    end,
                });
                customer.moods.push(MoodSpan {
                    from: add_days(date, 1),
                    until: end,
                    mood: Mood::Gone,
                });
                if !involuntary && chance(rng, VOCAL_LEAVER_SHARE) {
                    // Decided three to seven weeks before the last bill (but
                    // not before this spell began).
                    let from = add_days(date, -between(rng, 21, 50)).max(spell_start);
                    customer.moods.push(MoodSpan {
                        from,
                        until: add_days(date, 1),
                        mood: Mood::Leaving,
                    });
                }
                if !chance(rng, RESTART_SHARE) {
                    break 'spells;
                }
                restarts += 1;
                spell_start = restart_date(rng, date);
                continue 'spells;
            }
            if chance(rng, wobble_rate) {
                let offset = between(rng, 0, 20);
                let length = between(rng, 7, 21);
                customer
                    .moods
                    .push(span(date, offset, length, Mood::Wobbling));
            }
            previous_failed = failed;
        }
    }
}

/// A day between one and four months after a cancelled bill, on a billing
/// day (1 to 28) so that every later month has it.
fn restart_date(rng: &mut StdRng, cancelled_on: NaiveDate) -> NaiveDate {
    let months = between(rng, 1, 4) as u32;
    let day = add_days(add_months(cancelled_on, months), between(rng, 0, 20));
    clamp_billing_day(day)
}

/// Signup: a third of the customers before the history window, the rest
/// spread over it.
fn signup_date(rng: &mut StdRng, history_start: NaiveDate, as_of: NaiveDate) -> NaiveDate {
    let (from, until) = if chance(rng, OLD_CUSTOMER_SHARE) {
        (
            add_months(history_start, -(OLDEST_SIGNUP_MONTHS as i32)),
            history_start,
        )
    } else {
        (history_start, as_of)
    };
    let days = (until - from).num_days();
    let day = add_days(from, between(rng, 0, days - 1));
    if day.day() > 28 {
        // Billing days are 1 to 28, so that every month has them.
        day.with_day(between(rng, 1, 28) as u32).unwrap_or(day)
    } else {
        day
    }
}

fn plan_effect(plan: &str) -> f64 {
    match plan {
        "premium" => 0.35,
        "standard" => 0.15,
        _ => 0.0,
    }
}

fn age_effect(age: Option<i32>) -> f64 {
    match age {
        None => 0.1,
        Some(a) if a < 25 => 0.35,
        Some(a) if a < 40 => 0.1,
        Some(a) if a < 60 => 0.0,
        Some(_) => -0.25,
    }
}

/// New subscribers leave most easily; those past their first year rarely.
fn tenure_effect(months: u32) -> f64 {
    match months {
        0 => 0.7,
        1 => 0.45,
        2 => 0.25,
        3 => 0.1,
        4..=11 => 0.0,
        _ => -0.3,
    }
}

fn span(date: NaiveDate, offset_days: i64, length_days: i64, mood: Mood) -> MoodSpan {
    let from = add_days(date, offset_days);
    MoodSpan {
        from,
        until: add_days(from, length_days),
        mood,
    }
}

fn round_cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Moves a day past the 28th to the 28th.
fn clamp_billing_day(day: NaiveDate) -> NaiveDate {
    if day.day() > 28 {
        day.with_day(28).unwrap_or(day)
    } else {
        day
    }
}

/// `date` moved by whole months, saturating at the ends of the calendar
/// (unreachable for the validated `as_of` range).
pub(crate) fn add_months(date: NaiveDate, months: impl Into<i64>) -> NaiveDate {
    let months: i64 = months.into();
    let shift = Months::new(months.unsigned_abs().min(u32::MAX as u64) as u32);
    let moved = if months >= 0 {
        date.checked_add_months(shift)
    } else {
        date.checked_sub_months(shift)
    };
    moved.unwrap_or(if months >= 0 {
        NaiveDate::MAX
    } else {
        NaiveDate::MIN
    })
}

/// `date` moved by days, saturating at the ends of the calendar.
pub(crate) fn add_days(date: NaiveDate, days: i64) -> NaiveDate {
    let shift = Days::new(days.unsigned_abs());
    let moved = if days >= 0 {
        date.checked_add_days(shift)
    } else {
        date.checked_sub_days(shift)
    };
    moved.unwrap_or(if days >= 0 {
        NaiveDate::MAX
    } else {
        NaiveDate::MIN
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn customers(n: i64) -> Vec<Customer> {
        (0..n)
            .map(|id| simulate_customer(7, id, date(2025, 11, 1), date(2026, 11, 1)))
            .collect()
    }

    #[test]
    fn spells_start_with_a_new_customer_bill_and_end_with_a_cancelled_one() {
        let as_of = date(2026, 11, 1);
        for c in customers(500) {
            assert_eq!(c.bills[0].date, c.signup_date);
            assert!(c.bills[0].new_customer);
            assert!(
                c.bills
                    .iter()
                    .all(|b| b.date <= as_of && b.date.day() <= 28)
            );
            assert!(c.bills.windows(2).all(|w| w[0].date < w[1].date));
            let starts = c.bills.iter().filter(|b| b.new_customer).count();
            assert_eq!(starts, c.spells.len(), "customer {}", c.id);
            // Every bill but the last of a spell is followed a month later.
            for w in c.bills.windows(2) {
                if w[0].cancelled_service {
                    assert!(w[1].new_customer && w[1].date >= add_months(w[0].date, 1));
                } else {
                    assert_eq!(w[1].date, add_months(w[0].date, 1));
                    assert!(!w[1].new_customer);
                }
            }
        }
    }

    #[test]
    fn about_a_third_of_cancellers_come_back() {
        let (mut cancels, mut restarts) = (0, 0);
        for c in customers(3000) {
            for w in c.bills.windows(2) {
                if w[0].cancelled_service {
                    restarts += 1;
                }
            }
            cancels += c.bills.iter().filter(|b| b.cancelled_service).count();
        }
        let share = restarts as f64 / cancels as f64;
        // Restarts after `as_of` are not seen, so the share is a little low.
        assert!((0.2..0.35).contains(&share), "{share}");
    }

    #[test]
    fn moods_apply_only_during_service() {
        let c = customers(50)
            .into_iter()
            .find(|c| c.bills.iter().any(|b| b.cancelled_service))
            .unwrap();
        let before = add_days(c.signup_date, -1);
        assert_eq!(c.mood_on(before), None);
        assert!(c.mood_on(c.signup_date).is_some());
        let last = c.spells[0];
        assert_eq!(c.mood_on(add_days(last.end, -1)), Some(Mood::Gone));
    }

    #[test]
    fn month_arithmetic_saturates() {
        assert_eq!(add_months(date(2026, 1, 28), 1), date(2026, 2, 28));
        assert_eq!(add_months(date(2026, 1, 28), -13), date(2024, 12, 28));
        assert_eq!(add_months(NaiveDate::MAX, 1), NaiveDate::MAX);
        assert_eq!(add_days(NaiveDate::MIN, -1), NaiveDate::MIN);
    }
}
