//! Payload filters: a subscription's `"filter"`, a JSON document matched against each event's
//! payload at fan-out (after the event-type lookup) and at replay, in the query style of
//! Outpost and Convoy: `{"amount": {"$gt": 100}, "currency": {"$in": ["EUR", "USD"]}}`.
//! (Event-type filters are [`crate::filter`]; this module knows nothing of types.)
//!
//! Grammar: a document is an object whose keys are field paths or combinators. A path is
//! dotted (`customer.address.country`); it walks objects by key and arrays by index (`items.0`)
//! or, for any other segment, into every element (`items.sku`). A path's condition is a plain
//! value (`$eq`) or an object of operators, all of which must hold: `$eq $ne $gt $gte $lt $lte
//! $in $nin $exists $prefix`, and `$not` over an operator object. Combinators: `$and` and
//! `$or` (non-empty lists of documents) and `$not` (a document).
//!
//! Invariants: a filter is compiled once, when its subscription is written or read into the
//! cache ([`PayloadFilter::compile`]), never per event; an unknown operator or a malformed
//! document is refused then, naming its position (`$and[1].currency.$in`); evaluation never
//! fails: a type mismatch (a string against `$gt: 100`) or a missing field simply does not
//! match. Size and nesting are bounded so a filter's cost per event is bounded too.

mod eval;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

/// Deepest nesting of documents and operator objects.
pub const MAX_DEPTH: usize = 8;
/// Most conditions (fields, operators, combinators) in one filter.
pub const MAX_NODES: usize = 256;
/// Longest filter, as compact JSON.
pub const MAX_BYTES: usize = 16 * 1024;

/// A compiled payload filter, with the document it was compiled from.
#[derive(Debug, Clone)]
pub struct PayloadFilter {
    doc: Value,
    root: Vec<Node>,
}

impl PartialEq for PayloadFilter {
    fn eq(&self, other: &PayloadFilter) -> bool {
        self.doc == other.doc
    }
}

/// A refused filter: where (a dotted position inside the document) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter at {position:?}: {why}")]
pub struct InvalidPayloadFilter {
    pub position: String,
    pub why: String,
}

/// One condition of a document (all of a document's conditions must hold).
#[derive(Debug, Clone)]
enum Node {
    And(Vec<Vec<Node>>),
    Or(Vec<Vec<Node>>),
    Not(Vec<Node>),
    Field { path: Vec<Segment>, ops: Vec<Op> },
}

/// One step of a field path.
#[derive(Debug, Clone)]
struct Segment {
    key: String,
    /// The key read as an array index, when it is one.
    index: Option<usize>,
}

/// An operator applied to the values a path reaches.
#[derive(Debug, Clone)]
enum Op {
    Eq(Value),
    Ne(Value),
    Cmp(Ordering, Scalar),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Exists(bool),
    Prefix(String),
    Not(Vec<Op>),
}

/// What `$gt` and friends compare against: numbers with numbers, strings with strings.
#[derive(Debug, Clone)]
enum Scalar {
    Num(f64),
    Str(String),
}

/// `$gt`, `$gte`, `$lt`, `$lte`.
#[derive(Debug, Clone, Copy)]
enum Ordering {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl PayloadFilter {
    /// Compiles `doc`; `None` for an empty document (it matches every payload).
    pub fn compile(doc: &Value) -> Result<Option<PayloadFilter>, InvalidPayloadFilter> {
        let size = serde_json::to_vec(doc).map(|v| v.len()).unwrap_or(usize::MAX);
        if size > MAX_BYTES {
            return Err(invalid("", format!("a filter is at most {MAX_BYTES} bytes of JSON")));
        }
        let Value::Object(map) = doc else {
            return Err(invalid("", "a filter is a JSON object"));
        };
        if map.is_empty() {
            return Ok(None);
        }
        let mut budget = Compiler { nodes: 0 };
        let root = budget.document(map, "", 0)?;
        Ok(Some(PayloadFilter { doc: doc.clone(), root }))
    }

    /// The document this filter was compiled from (what is stored and shown).
    pub fn document(&self) -> &Value {
        &self.doc
    }

    /// Whether `payload` passes the filter (never an error: see the module doc).
    pub fn matches(&self, payload: &Value) -> bool {
        eval::all(&self.root, payload)
    }
}

fn invalid(position: &str, why: impl Into<String>) -> InvalidPayloadFilter {
    let position = if position.is_empty() { "(root)".to_string() } else { position.to_string() };
    InvalidPayloadFilter { position, why: why.into() }
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() { child.to_string() } else { format!("{parent}.{child}") }
}

/// Compiles documents while counting nodes against [`MAX_NODES`].
struct Compiler {
    nodes: usize,
}

impl Compiler {
    fn count(&mut self, at: &str, depth: usize) -> Result<(), InvalidPayloadFilter> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(invalid(at, format!("a filter has at most {MAX_NODES} conditions")));
        }
        if depth > MAX_DEPTH {
            return Err(invalid(at, format!("a filter nests at most {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn document(
        &mut self,
        map: &Map<String, Value>,
        at: &str,
        depth: usize,
    ) -> Result<Vec<Node>, InvalidPayloadFilter> {
        let mut nodes = Vec::with_capacity(map.len());
        for (key, value) in map {
            let here = join(at, key);
            self.count(&here, depth)?;
            let node = match key.as_str() {
                "$and" => Node::And(self.documents(value, &here, depth)?),
                "$or" => Node::Or(self.documents(value, &here, depth)?),
                "$not" => match value {
                    Value::Object(m) if !m.is_empty() => {
                        Node::Not(self.document(m, &here, depth + 1)?)
                    }
                    _ => return Err(invalid(&here, "$not takes a non-empty filter object")),
                },
                k if k.starts_with('$') => {
                    return Err(invalid(
                        &here,
                        format!("unknown combinator {k:?} (use $and, $or, $not)"),
                    ));
                }
                path => Node::Field {
                    path: parse_path(path, &here)?,
                    ops: self.condition(value, &here, depth)?,
                },
            };
            nodes.push(node);
        }
        Ok(nodes)
    }

    fn documents(
        &mut self,
        value: &Value,
        at: &str,
        depth: usize,
    ) -> Result<Vec<Vec<Node>>, InvalidPayloadFilter> {
        let list = match value {
            Value::Array(list) if !list.is_empty() => list,
            _ => return Err(invalid(at, "takes a non-empty list of filter objects")),
        };
        list.iter()
            .enumerate()
            .map(|(i, item)| {
                let here = format!("{at}[{i}]");
                match item {
                    Value::Object(m) => self.document(m, &here, depth + 1),
                    _ => Err(invalid(&here, "a filter object is expected")),
                }
            })
            .collect()
    }

    /// A path's condition: a plain value (`$eq`) or an object of operators.
    fn condition(
        &mut self,
        value: &Value,
        at: &str,
        depth: usize,
    ) -> Result<Vec<Op>, InvalidPayloadFilter> {
        let Value::Object(map) = value else {
            return Ok(vec![Op::Eq(value.clone())]);
        };
        let operators = map.keys().filter(|k| k.starts_with('$')).count();
        if operators == 0 {
            return Ok(vec![Op::Eq(value.clone())]);
        }
        if operators != map.len() {
            return Err(invalid(
                at,
                "mixes operators ($...) and plain keys; use {\"$eq\": {...}} to match an object",
            ));
        }
        map.iter()
            .map(|(op, arg)| {
                let here = join(at, op);
                self.count(&here, depth)?;
                operator(self, op, arg, &here, depth)
            })
            .collect()
    }
}

fn operator(
    c: &mut Compiler,
    op: &str,
    arg: &Value,
    at: &str,
    depth: usize,
) -> Result<Op, InvalidPayloadFilter> {
    let cmp = |o: Ordering| match arg {
        Value::Number(n) => n
            .as_f64()
            .map(|f| Op::Cmp(o, Scalar::Num(f)))
            .ok_or_else(|| invalid(at, "not a finite number")),
        Value::String(s) => Ok(Op::Cmp(o, Scalar::Str(s.clone()))),
        _ => Err(invalid(at, format!("{op} takes a number or a string"))),
    };
    let list = || match arg {
        Value::Array(items) => Ok(items.clone()),
        _ => Err(invalid(at, format!("{op} takes a list"))),
    };
    match op {
        "$eq" => Ok(Op::Eq(arg.clone())),
        "$ne" => Ok(Op::Ne(arg.clone())),
        "$gt" => cmp(Ordering::Gt),
        "$gte" => cmp(Ordering::Gte),
        "$lt" => cmp(Ordering::Lt),
        "$lte" => cmp(Ordering::Lte),
        "$in" => list().map(Op::In),
        "$nin" => list().map(Op::Nin),
        "$exists" => match arg {
            Value::Bool(b) => Ok(Op::Exists(*b)),
            _ => Err(invalid(at, "$exists takes true or false")),
        },
        "$prefix" => match arg {
            Value::String(s) => Ok(Op::Prefix(s.clone())),
            _ => Err(invalid(at, "$prefix takes a string")),
        },
        "$not" => match arg {
            Value::Object(m) if !m.is_empty() && m.keys().all(|k| k.starts_with('$')) => {
                c.condition(arg, at, depth + 1).map(Op::Not)
            }
            _ => Err(invalid(at, "$not on a field takes an object of operators")),
        },
        other => Err(invalid(
            at,
            format!(
                "unknown operator {other:?} (use $eq $ne $gt $gte $lt $lte $in $nin $exists $prefix $not)"
            ),
        )),
    }
}

fn parse_path(path: &str, at: &str) -> Result<Vec<Segment>, InvalidPayloadFilter> {
    if path.split('.').any(str::is_empty) {
        return Err(invalid(at, "a field path is dot-separated non-empty names"));
    }
    Ok(path
        .split('.')
        .map(|key| Segment { key: key.to_string(), index: key.parse().ok() })
        .collect())
}
