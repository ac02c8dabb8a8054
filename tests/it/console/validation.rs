//! The CloudEvents validation handshake from the console: chosen in the Add-endpoint form, its
//! refusal shown in the endpoint's view.

use serde_json::json;

use super::browser::{link, scenario};
use super::config;
use crate::api::Api;
use crate::harness::receiver::Reply;
use crate::world::{ADMIN, World};

#[tokio::test]
async fn an_endpoint_with_validation_is_made_in_the_console_and_its_refusal_shown() {
    let w = World::start().await;
    let app = w.start_app(config(&w)).await;
    w.receiver.set_default("/refuses", Reply::Status(405));
    let endpoint = w.receiver.url("/refuses");
    scenario("validation.mjs", &[&link(&app, json!({})).await, &endpoint]).await;
    let (_, page) = Api::new(&app).get("/v1/subscriptions", ADMIN).await;
    let made = &page["items"][0];
    assert_eq!((&made["url"], &made["validation"]), (&json!(endpoint), &json!("cloudevents")));
    assert_eq!((&made["active"], &made["validation_status"]), (&json!(false), &json!("refused")));
    assert_eq!(w.receiver.requests_for("/refuses")[0].method, "OPTIONS");
    app.stop().await;
}
