//! The CLI and the admin API are two front ends of one operations layer: the same action with
//! the same input must come to the same outcome through both. Table-driven: each step runs once
//! through the `hookline` binary and once through the API, each on its own but identical
//! subscription, and both must agree on the kind of outcome (success, invalid input naming the
//! same field, not found, conflict), as exit code and as HTTP status.

use reqwest::Method;
use serde_json::{Value, json};

use crate::api::Api;
use crate::world::{ADMIN, World};

/// The outcome both front ends must agree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    /// Bad input: the API's 400 names `api_field`, the CLI's message names `cli_flag`.
    Invalid {
        api_field: &'static str,
        cli_flag: &'static str,
    },
    NotFound,
    Conflict,
}

impl Outcome {
    fn exit_code(self) -> i32 {
        match self {
            Outcome::Ok => 0,
            Outcome::Invalid { .. } => 2,
            Outcome::NotFound => 3,
            Outcome::Conflict => 4,
        }
    }

    fn status_ok(self, status: u16) -> bool {
        match self {
            Outcome::Ok => (200..300).contains(&status),
            Outcome::Invalid { .. } => status == 400,
            Outcome::NotFound => status == 404,
            Outcome::Conflict => status == 409,
        }
    }
}

/// One action: its CLI arguments and its API request, given the subscription id to act on.
struct Step {
    what: &'static str,
    cli: fn(&str) -> Vec<String>,
    api: fn(&str) -> (Method, String, Option<Value>),
    expect: Outcome,
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Publishes an event whose id is tied to the front end's subscription (so the two front ends
/// never collide, and a second call of either is a duplicate).
fn publish_cli(sub: &str) -> Vec<String> {
    args(&["publish", "order.parity", "{}", "--event-id", &format!("evt_{sub}")])
}

fn publish_api(sub: &str) -> (Method, String, Option<Value>) {
    let body = serde_json::json!({
        "event_id": format!("evt_{sub}"), "event_type": "order.parity", "payload": {}
    });
    (Method::POST, "/v1/events".into(), Some(body))
}

fn steps() -> Vec<Step> {
    use Outcome::*;
    vec![
        Step {
            what: "get an existing subscription",
            cli: |id| args(&["subscriptions", "get", id]),
            api: |id| (Method::GET, format!("/v1/subscriptions/{id}"), None),
            expect: Ok,
        },
        Step { what: "publish an event", cli: publish_cli, api: publish_api, expect: Ok },
        Step {
            what: "publish it again (same event id)",
            cli: publish_cli,
            api: publish_api,
            expect: Conflict,
        },
        Step {
            what: "get an unknown subscription",
            cli: |_| args(&["subscriptions", "get", "sub_nope"]),
            api: |_| (Method::GET, "/v1/subscriptions/sub_nope".into(), None),
            expect: NotFound,
        },
        Step {
            what: "get with a malformed id",
            cli: |_| args(&["subscriptions", "get", "nope"]),
            api: |_| (Method::GET, "/v1/subscriptions/nope".into(), None),
            expect: Invalid { api_field: "id", cli_flag: "<ID>" },
        },
        Step {
            what: "deactivate an active subscription",
            cli: |id| args(&["subscriptions", "deactivate", id]),
            api: |id| (Method::POST, format!("/v1/subscriptions/{id}/deactivate"), None),
            expect: Ok,
        },
        Step {
            what: "deactivate it again",
            cli: |id| args(&["subscriptions", "deactivate", id]),
            api: |id| (Method::POST, format!("/v1/subscriptions/{id}/deactivate"), None),
            expect: Conflict,
        },
        Step {
            what: "activate it",
            cli: |id| args(&["subscriptions", "activate", id]),
            api: |id| (Method::POST, format!("/v1/subscriptions/{id}/activate"), None),
            expect: Ok,
        },
        Step {
            what: "activate it again",
            cli: |id| args(&["subscriptions", "activate", id]),
            api: |id| (Method::POST, format!("/v1/subscriptions/{id}/activate"), None),
            expect: Conflict,
        },
        Step {
            what: "activate an unknown subscription",
            cli: |_| args(&["subscriptions", "activate", "sub_nope"]),
            api: |_| (Method::POST, "/v1/subscriptions/sub_nope/activate".into(), None),
            expect: NotFound,
        },
        Step {
            what: "rotate the secret of an unknown subscription",
            cli: |_| args(&["subscriptions", "rotate-secret", "sub_nope"]),
            api: |_| (Method::POST, "/v1/subscriptions/sub_nope/rotate-secret".into(), None),
            expect: NotFound,
        },
        Step {
            what: "create with a non-http url",
            cli: |_| args(&["subscriptions", "create", "--url", "ftp://example.com/"]),
            api: |_| {
                (
                    Method::POST,
                    "/v1/subscriptions".into(),
                    Some(json!({"url": "ftp://example.com/"})),
                )
            },
            expect: Invalid { api_field: "url", cli_flag: "url" },
        },
        Step {
            what: "list by a malformed event type",
            cli: |_| args(&["subscriptions", "list", "--event-type", "a..b"]),
            api: |_| (Method::GET, "/v1/subscriptions?event_type=a..b".into(), None),
            expect: Invalid { api_field: "event_type", cli_flag: "--event-type" },
        },
        Step {
            what: "list by a malformed tenant",
            cli: |_| args(&["subscriptions", "list", "--tenant", "bad tenant"]),
            api: |_| (Method::GET, "/v1/subscriptions?tenant_id=bad%20tenant".into(), None),
            expect: Invalid { api_field: "tenant_id", cli_flag: "--tenant" },
        },
        Step {
            what: "redeliver all of an empty subscription id",
            cli: |_| args(&["dlq", "redeliver", "--all", "--subscription", ""]),
            api: |_| {
                let body = json!({"all": true, "subscription_id": ""});
                (Method::POST, "/v1/dlq/redeliver".into(), Some(body))
            },
            expect: Invalid { api_field: "subscription_id", cli_flag: "--subscription" },
        },
        Step {
            what: "list the dlq of a malformed subscription id",
            cli: |_| args(&["dlq", "list", "--subscription", "x.y"]),
            api: |_| (Method::GET, "/v1/dlq?subscription_id=x.y".into(), None),
            expect: Invalid { api_field: "subscription_id", cli_flag: "--subscription" },
        },
        Step {
            what: "get an unknown dlq entry",
            cli: |_| args(&["dlq", "get", "999999"]),
            api: |_| (Method::GET, "/v1/dlq/999999".into(), None),
            expect: NotFound,
        },
        Step {
            what: "list attempts of an unknown status",
            cli: |_| args(&["attempts", "list", "--status", "exploded"]),
            api: |_| (Method::GET, "/v1/attempts?status=exploded".into(), None),
            expect: Invalid { api_field: "status", cli_flag: "--status" },
        },
        Step {
            what: "list attempts of an unknown subscription",
            cli: |_| args(&["attempts", "list", "--subscription", "sub_nope"]),
            api: |_| (Method::GET, "/v1/attempts?subscription_id=sub_nope".into(), None),
            expect: NotFound,
        },
        Step {
            what: "publish a malformed event type",
            cli: |_| args(&["publish", "bad type", "{}"]),
            api: |_| {
                let body = json!({"event_type": "bad type", "payload": {}});
                (Method::POST, "/v1/events".into(), Some(body))
            },
            expect: Invalid { api_field: "event_type", cli_flag: "<EVENT_TYPE>" },
        },
        Step {
            what: "replay an unknown event",
            cli: |_| args(&["replay", "--event-id", "evt_never"]),
            api: |_| (Method::POST, "/v1/replay".into(), Some(json!({"event_id": "evt_never"}))),
            expect: NotFound,
        },
        Step {
            what: "stats of an unknown subscription",
            cli: |_| args(&["stats", "--subscription", "sub_nope"]),
            api: |_| (Method::GET, "/v1/subscriptions/sub_nope/stats".into(), None),
            expect: NotFound,
        },
        Step {
            what: "delete the subscription",
            cli: |id| args(&["subscriptions", "delete", id]),
            api: |id| (Method::DELETE, format!("/v1/subscriptions/{id}"), None),
            expect: Ok,
        },
        Step {
            what: "delete it again",
            cli: |id| args(&["subscriptions", "delete", id]),
            api: |id| (Method::DELETE, format!("/v1/subscriptions/{id}"), None),
            expect: NotFound,
        },
    ]
}

#[tokio::test]
async fn cli_and_api_agree_on_every_outcome_and_on_the_field_of_bad_input() {
    let w = World::start().await;
    let app = w.start_app(w.config("\"0s\"")).await;
    let api = Api::new(&app);
    // One subscription per front end, in the same state, so state-changing steps line up.
    let via_cli = w.subscribe("/parity-cli", &["order.*"], None).await;
    let via_api = w.subscribe("/parity-api", &["order.*"], None).await;
    let mut disagreements = Vec::new();
    for step in steps() {
        let out =
            w.cli(&(step.cli)(&via_cli.id).iter().map(String::as_str).collect::<Vec<_>>()).await;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let (method, path, body) = (step.api)(&via_api.id);
        let (status, resp) = api.call(method, &path, Some(ADMIN), body).await;
        let cli_ok = out.status.code() == Some(step.expect.exit_code());
        let api_ok = step.expect.status_ok(status);
        let fields_ok = match step.expect {
            Outcome::Invalid { api_field, cli_flag } => {
                resp["error"]["field"].as_str() == Some(api_field) && stderr.contains(cli_flag)
            }
            _ => true,
        };
        if !(cli_ok && api_ok && fields_ok) {
            disagreements.push(format!(
                "{}: expected {:?}; cli exit {:?} ({}), api {status} ({resp})",
                step.what,
                step.expect,
                out.status.code(),
                stderr.trim()
            ));
        }
    }
    assert!(disagreements.is_empty(), "front ends disagree:\n{}", disagreements.join("\n"));
    app.stop().await;
}

#[tokio::test]
async fn activating_an_active_subscription_publishes_no_lifecycle_event_from_either_front_end() {
    use futures::StreamExt;
    let w = World::start().await;
    let app = w.start_app(w.config("\"0s\"")).await;
    let api = Api::new(&app);
    let sub = w.subscribe("/parity-once", &[], None).await;
    let client = w.nats.client().await;
    let mut events = client.subscribe(format!("{}.lifecycle.>", w.prefix)).await.unwrap();
    client.flush().await.unwrap();
    let activate = format!("/v1/subscriptions/{}/activate", sub.id);
    let cli = w.cli(&["subscriptions", "activate", &sub.id]).await;
    assert_eq!(cli.status.code(), Some(4), "{}", String::from_utf8_lossy(&cli.stderr));
    let (status, _) = api.call(Method::POST, &activate, Some(ADMIN), None).await;
    assert_eq!(status, 409);
    // A real change after the refused ones: had either refused activation published an event,
    // it would arrive before this one.
    let deactivate = format!("/v1/subscriptions/{}/deactivate", sub.id);
    let (status, _) = api.call(Method::POST, &deactivate, Some(ADMIN), None).await;
    assert_eq!(status, 200);
    let first = tokio::time::timeout(crate::world::WAIT, events.next())
        .await
        .expect("the deactivation publishes an event")
        .expect("subscription open");
    let event: Value = serde_json::from_slice(&first.payload).unwrap();
    assert_eq!(event["kind"], "deactivated", "first lifecycle event: {event}");
    app.stop().await;
}
