//! Sums of money: any sequence of values one outcome may carry (any 28-digit decimal, any
//! scale) adds up without a panic, exactly: the same total in any order, through the
//! dashboard's roll-up arithmetic (`Tally`), and back from its stored text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rust_decimal::Decimal;
use tracker_core::{
    event::EventKind,
    money::MoneySum,
    rollup::{Fact, Tally},
};

fuzz_target!(|data: &[u8]| {
    let values: Vec<Decimal> = data
        .chunks_exact(17)
        .filter_map(|chunk| {
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&chunk[..16]);
            let mantissa = i128::from_le_bytes(bytes) % 10i128.pow(28);
            Decimal::try_from_i128_with_scale(mantissa, u32::from(chunk[16] % 29)).ok()
        })
        .collect();
    let mut forward = MoneySum::zero();
    for value in &values {
        forward.add(*value);
    }
    let mut backward = MoneySum::zero();
    for value in values.iter().rev() {
        backward.add(*value);
    }
    assert_eq!(forward, backward);
    assert_eq!(forward.to_string().parse::<MoneySum>().ok(), Some(forward.clone()));
    let _ = forward.to_money_string();

    // One visit per value, all on one day: the dashboard's total is the same sum.
    let mut tally = Tally::default();
    let id = uuid::Uuid::from_u128(1);
    for value in &values {
        tally.add_visit(
            uuid::Uuid::from_u128(2),
            0,
            None,
            &[Fact {
                kind: EventKind::Outcome,
                definition: Some((id, "Purchase".into())),
                points: i64::MAX,
                url: None,
                money: Some(*value),
                currency: Some("EUR".into()),
            }],
        );
    }
    let dashboard = tally.dashboard().expect("a dashboard");
    if !values.is_empty() {
        assert_eq!(dashboard.outcomes[0].monetary_value["EUR"], forward);
        assert_eq!(dashboard.outcomes[0].count, values.len() as u64);
    }
});
