use serde_json::{Value, json};

use super::*;

fn filter(doc: Value) -> PayloadFilter {
    PayloadFilter::compile(&doc).unwrap().expect("a non-empty filter")
}

fn matches(doc: Value, payload: Value) -> bool {
    filter(doc).matches(&payload)
}

fn refused_at(doc: Value) -> String {
    PayloadFilter::compile(&doc).unwrap_err().position
}

#[test]
fn every_operator_matches_and_misses() {
    let p = json!({"amount": 150, "currency": "EUR", "ref": "ord_123", "note": null});
    for (doc, want) in [
        (json!({"amount": 150}), true),
        (json!({"amount": 150.0}), true),
        (json!({"amount": {"$eq": 151}}), false),
        (json!({"amount": {"$ne": 151}}), true),
        (json!({"amount": {"$ne": 150}}), false),
        (json!({"amount": {"$gt": 100}}), true),
        (json!({"amount": {"$gt": 150}}), false),
        (json!({"amount": {"$gte": 150}}), true),
        (json!({"amount": {"$lt": 150}}), false),
        (json!({"amount": {"$lte": 150}}), true),
        (json!({"amount": {"$gt": 100, "$lt": 200}}), true),
        (json!({"amount": {"$gt": 100, "$lt": 120}}), false),
        (json!({"currency": {"$in": ["EUR", "USD"]}}), true),
        (json!({"currency": {"$in": ["GBP"]}}), false),
        (json!({"currency": {"$nin": ["GBP"]}}), true),
        (json!({"currency": {"$nin": ["EUR"]}}), false),
        (json!({"ref": {"$prefix": "ord_"}}), true),
        (json!({"ref": {"$prefix": "inv_"}}), false),
        (json!({"ref": {"$exists": true}}), true),
        (json!({"nope": {"$exists": true}}), false),
        (json!({"nope": {"$exists": false}}), true),
        (json!({"note": {"$exists": true}}), true),
        (json!({"note": null}), true),
        (json!({"currency": {"$gte": "EUR", "$lt": "F"}}), true),
        (json!({"amount": {"$not": {"$gt": 100}}}), false),
    ] {
        assert_eq!(matches(doc.clone(), p.clone()), want, "{doc}");
    }
}

#[test]
fn combinators_and_or_not() {
    let p = json!({"amount": 50, "currency": "USD"});
    assert!(matches(json!({"$or": [{"amount": {"$gt": 100}}, {"currency": "USD"}]}), p.clone()));
    assert!(!matches(json!({"$or": [{"amount": {"$gt": 100}}, {"currency": "EUR"}]}), p.clone()));
    assert!(matches(json!({"$and": [{"amount": {"$lt": 100}}, {"currency": "USD"}]}), p.clone()));
    assert!(!matches(json!({"$and": [{"amount": {"$lt": 10}}, {"currency": "USD"}]}), p.clone()));
    assert!(matches(json!({"$not": {"currency": "EUR"}}), p.clone()));
    assert!(!matches(json!({"$not": {"currency": "USD"}}), p.clone()));
    let nested = json!({"$and": [{"$or": [{"amount": 1}, {"amount": 50}]}, {"$not": {"x": {"$exists": true}}}]});
    assert!(matches(nested, p));
}

#[test]
fn nested_paths_and_arrays() {
    let p = json!({
        "customer": {"address": {"country": "DE"}, "tags": ["vip", "beta"]},
        "items": [{"sku": "A1", "qty": 2}, {"sku": "B2", "qty": 10}],
        "matrix": [[1, 2], [3]]
    });
    assert!(matches(json!({"customer.address.country": "DE"}), p.clone()));
    assert!(!matches(json!({"customer.address.country": "FR"}), p.clone()));
    assert!(matches(json!({"customer.tags": "vip"}), p.clone()), "an array holds the value");
    assert!(matches(json!({"customer.tags": {"$in": ["beta", "x"]}}), p.clone()));
    assert!(matches(json!({"customer.tags": ["vip", "beta"]}), p.clone()), "the whole array");
    assert!(matches(json!({"customer.tags.1": "beta"}), p.clone()), "by index");
    assert!(!matches(json!({"customer.tags.5": {"$exists": true}}), p.clone()));
    assert!(matches(json!({"items.sku": "B2"}), p.clone()), "into every element");
    assert!(matches(json!({"items.qty": {"$gt": 5}}), p.clone()));
    assert!(!matches(json!({"items.qty": {"$gt": 50}}), p.clone()));
    assert!(matches(json!({"items.0.sku": "A1"}), p.clone()));
    assert!(matches(json!({"matrix.1": [3]}), p));
}

#[test]
fn missing_fields_and_type_mismatches_do_not_match_and_never_fail() {
    let p = json!({"amount": "150", "flag": true, "list": [1, "a"], "obj": {"a": 1}});
    assert!(!matches(json!({"amount": {"$gt": 100}}), p.clone()), "a string is not > 100");
    assert!(!matches(json!({"amount": 150}), p.clone()));
    assert!(!matches(json!({"flag": {"$prefix": "t"}}), p.clone()));
    assert!(!matches(json!({"obj": {"$lt": "z"}}), p.clone()));
    assert!(!matches(json!({"missing.deeper": 1}), p.clone()));
    assert!(matches(json!({"missing": {"$ne": 1}}), p.clone()), "$ne holds for a missing field");
    assert!(matches(json!({"missing": {"$nin": [1]}}), p.clone()));
    assert!(!matches(json!({"flag.x": 1}), p.clone()), "a path through a scalar");
    assert!(matches(json!({"list": {"$gt": 0}}), p.clone()), "the number element compares");
    assert!(matches(json!({"obj": {"$eq": {"a": 1}}}), p.clone()));
    assert!(matches(json!({"obj": {"a": 1}}), p.clone()), "a plain object is $eq");
    for payload in [json!(null), json!(7), json!("x"), json!([1, 2])] {
        assert!(!matches(json!({"a": 1}), payload));
    }
}

#[test]
fn an_empty_filter_is_no_filter() {
    assert_eq!(PayloadFilter::compile(&json!({})).unwrap(), None);
}

#[test]
fn invalid_filters_are_refused_naming_the_position() {
    assert_eq!(refused_at(json!({"amount": {"$gtx": 1}})), "amount.$gtx");
    assert_eq!(refused_at(json!({"$and": [{"a": 1}, {"b": {"$in": 3}}]})), "$and[1].b.$in");
    assert_eq!(refused_at(json!({"$or": []})), "$or");
    assert_eq!(refused_at(json!({"$or": [1]})), "$or[0]");
    assert_eq!(refused_at(json!({"$nor": [{"a": 1}]})), "$nor");
    assert_eq!(refused_at(json!({"$not": 1})), "$not");
    assert_eq!(refused_at(json!({"a": {"$exists": "yes"}})), "a.$exists");
    assert_eq!(refused_at(json!({"a": {"$prefix": 1}})), "a.$prefix");
    assert_eq!(refused_at(json!({"a": {"$gt": [1]}})), "a.$gt");
    assert_eq!(refused_at(json!({"a": {"$gt": 1, "b": 2}})), "a");
    assert_eq!(refused_at(json!({"a..b": 1})), "a..b");
    assert_eq!(refused_at(json!({"a": {"$not": {"b": 1}}})), "a.$not");
    assert_eq!(refused_at(json!([1])), "(root)");
    assert_eq!(refused_at(json!("x")), "(root)");
    let err = PayloadFilter::compile(&json!({"amount": {"$gtx": 1}})).unwrap_err();
    assert!(err.to_string().contains("unknown operator \"$gtx\""), "{err}");
}

#[test]
fn size_and_depth_are_bounded() {
    let mut deep = json!({"a": 1});
    for _ in 0..=MAX_DEPTH {
        deep = json!({"$not": deep});
    }
    assert!(PayloadFilter::compile(&deep).is_err());
    let wide: serde_json::Map<String, Value> =
        (0..=MAX_NODES).map(|i| (format!("f{i}"), json!(i))).collect();
    assert!(PayloadFilter::compile(&Value::Object(wide)).is_err());
}

/// Evaluation cost per subscription and event (BENCHMARKS.md, "Signing cost"): `cargo test
/// --lib payload_filter_cost -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn payload_filter_cost() {
    let f = filter(
        json!({"amount": {"$gt": 100}, "currency": {"$in": ["EUR", "USD"]}, "customer.tier": {"$ne": "test"}}),
    );
    let payload = json!({"order_id": 42, "amount": 150, "currency": "USD", "customer": {"id": "c_1", "tier": "gold"}, "items": [{"sku": "A1"}, {"sku": "B2"}]});
    let n = 200_000;
    let start = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(f.matches(std::hint::black_box(&payload)));
    }
    println!(
        "payload filter (3 conditions), matching event: {:?} per evaluation",
        start.elapsed() / n
    );
    let start = std::time::Instant::now();
    for _ in 0..n / 10 {
        std::hint::black_box(
            PayloadFilter::compile(
                &json!({"amount": {"$gt": 100}, "currency": {"$in": ["EUR", "USD"]}}),
            )
            .unwrap(),
        );
    }
    println!("compiling it (once per cache fill): {:?}", start.elapsed() / (n / 10));
}
