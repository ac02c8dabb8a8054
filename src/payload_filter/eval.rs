//! Evaluating a compiled filter against a payload. Never fails: a missing field or a value of
//! another type than the operator's argument is "no match" (and `$ne` / `$nin` / `$exists:
//! false` hold for a missing field, as in MongoDB-style filters).

use serde_json::Value;

use super::{Node, Op, Ordering, Scalar, Segment};

/// Whether every node holds.
pub(super) fn all(nodes: &[Node], payload: &Value) -> bool {
    nodes.iter().all(|n| node(n, payload))
}

fn node(n: &Node, payload: &Value) -> bool {
    match n {
        Node::And(docs) => docs.iter().all(|d| all(d, payload)),
        Node::Or(docs) => docs.iter().any(|d| all(d, payload)),
        Node::Not(doc) => !all(doc, payload),
        Node::Field { path, ops } => {
            let found = resolve(path, payload);
            ops.iter().all(|op| holds(op, &found))
        }
    }
}

/// Every value `path` reaches: object keys by name, array elements by index, and, for a
/// non-index segment on an array, that key in each element.
fn resolve<'a>(path: &[Segment], payload: &'a Value) -> Vec<&'a Value> {
    let mut current = vec![payload];
    for seg in path {
        let mut next = Vec::new();
        for v in current {
            match v {
                Value::Object(m) => next.extend(m.get(&seg.key)),
                Value::Array(items) => match seg.index {
                    Some(i) => next.extend(items.get(i)),
                    None => next.extend(items.iter().filter_map(|e| e.as_object()?.get(&seg.key))),
                },
                _ => {}
            }
        }
        if next.is_empty() {
            return next;
        }
        current = next;
    }
    current
}

/// The values an operator is tested against: each found value and, for an array, its elements.
fn candidates<'a>(found: &[&'a Value]) -> impl Iterator<Item = &'a Value> {
    found.iter().flat_map(|v| {
        let elements = match v {
            Value::Array(items) => items.as_slice(),
            _ => &[],
        };
        std::iter::once(*v).chain(elements.iter())
    })
}

fn holds(op: &Op, found: &[&Value]) -> bool {
    match op {
        Op::Eq(x) => candidates(found).any(|c| same(c, x)),
        Op::Ne(x) => !candidates(found).any(|c| same(c, x)),
        Op::In(xs) => candidates(found).any(|c| xs.iter().any(|x| same(c, x))),
        Op::Nin(xs) => !candidates(found).any(|c| xs.iter().any(|x| same(c, x))),
        Op::Exists(b) => found.is_empty() != *b,
        Op::Prefix(p) => candidates(found).any(|c| c.as_str().is_some_and(|s| s.starts_with(p))),
        Op::Cmp(o, arg) => candidates(found).any(|c| compare(c, *o, arg)),
        Op::Not(ops) => !ops.iter().all(|op| holds(op, found)),
    }
}

/// JSON equality where numbers are equal by value (`1` equals `1.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn compare(value: &Value, o: Ordering, arg: &Scalar) -> bool {
    let ord = match (value, arg) {
        (Value::Number(n), Scalar::Num(x)) => n.as_f64().and_then(|v| v.partial_cmp(x)),
        (Value::String(s), Scalar::Str(x)) => Some(s.as_str().cmp(x.as_str())),
        _ => None,
    };
    let Some(ord) = ord else { return false };
    match o {
        Ordering::Gt => ord.is_gt(),
        Ordering::Gte => ord.is_ge(),
        Ordering::Lt => ord.is_lt(),
        Ordering::Lte => ord.is_le(),
    }
}
