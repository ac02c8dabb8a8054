//! A subscription's own retry schedule: its length is the attempt budget, whatever
//! `retry.schedule` says; it is validated as the global one is.

use reqwest::Method;
use serde_json::json;

use crate::api::Api;
use crate::harness::receiver::Reply;
use crate::world::{ADMIN, WAIT, World};

#[tokio::test]
async fn a_two_attempt_schedule_dead_letters_after_two_while_the_global_one_has_more() {
    let w = World::start().await;
    let app = w.start_app(w.config("\"0s\", \"100ms\", \"100ms\", \"100ms\"")).await;
    let api = Api::new(&app);
    w.receiver.set_default("/own", Reply::Status(500));
    w.receiver.set_default("/global", Reply::Status(500));
    let (status, own) = api
        .post(
            "/v1/subscriptions",
            ADMIN,
            json!({"url": w.receiver.url("/own"), "event_types": ["order.created"], "retry_schedule": ["0s", "200ms"]}),
        )
        .await;
    assert_eq!(status, 201, "{own}");
    assert_eq!(own["retry_schedule"], json!(["0s", "200ms"]));
    let own = own["id"].as_str().unwrap().to_string();
    let (_, global) = api
        .post(
            "/v1/subscriptions",
            ADMIN,
            json!({"url": w.receiver.url("/global"), "event_types": ["order.created"]}),
        )
        .await;
    assert!(global.get("retry_schedule").is_none(), "{global}");
    let global = global["id"].as_str().unwrap().to_string();

    w.publish("order.created", "evt_rs1", None).await;
    let own_dlq = w.wait_for_dlq(Some(&own), 1).await;
    assert_eq!((own_dlq[0].reason.as_str(), own_dlq[0].attempts), ("retries_exhausted", 2));
    let global_dlq = w.wait_for_dlq(Some(&global), 1).await;
    assert_eq!(global_dlq[0].attempts, 4);
    assert_eq!((w.receiver.count("/own"), w.receiver.count("/global")), (2, 4));

    // Validated as retry.schedule is; [] returns to the global schedule.
    for bad in [json!(["soon"]), json!(vec!["1s"; 101]), json!("1s")] {
        let (status, err) = api
            .post(
                "/v1/subscriptions",
                ADMIN,
                json!({"url": w.receiver.url("/x"), "retry_schedule": bad}),
            )
            .await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (400, Some("retry_schedule")),
            "{err}"
        );
    }
    let path = format!("/v1/subscriptions/{own}");
    let (status, cleared) =
        api.call(Method::PATCH, &path, Some(ADMIN), Some(json!({"retry_schedule": []}))).await;
    assert_eq!(status, 200);
    assert!(cleared.get("retry_schedule").is_none(), "{cleared}");
    app.stop().await;
}

#[tokio::test]
async fn a_pending_retry_keeps_the_schedule_it_was_made_with() {
    let w = World::start().await;
    let app = w.start_app(w.config("\"0s\"")).await;
    let api = Api::new(&app);
    w.receiver.set_default("/keep", Reply::Status(500));
    let (_, sub) = api
        .post(
            "/v1/subscriptions",
            ADMIN,
            json!({"url": w.receiver.url("/keep"), "event_types": ["order.created"], "retry_schedule": ["0s", "2s", "1s"]}),
        )
        .await;
    let id = sub["id"].as_str().unwrap().to_string();
    w.publish("order.created", "evt_keep", None).await;
    w.receiver.wait_for_requests("/keep", 1, WAIT).await;
    // While attempt 2 is pending, the subscription drops to a single attempt: the pending
    // retry still follows the three-attempt schedule it was made with.
    let path = format!("/v1/subscriptions/{id}");
    let (status, _) =
        api.call(Method::PATCH, &path, Some(ADMIN), Some(json!({"retry_schedule": ["0s"]}))).await;
    assert_eq!(status, 200);
    let dlq = w.wait_for_dlq(Some(&id), 1).await;
    assert_eq!((dlq[0].attempts, w.receiver.count("/keep")), (3, 3));
    app.stop().await;
}
