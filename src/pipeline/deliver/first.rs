//! A first attempt made by the fan-out itself: no delivery message is published, consumed and
//! acked for a delivery its endpoint can take at once. The attempt is the deliverer's own
//! ([`Job::run`]: cache read, admission with the inbox dedupe, signed POST, conclusion), run in
//! a task the fan-out waits for until `delivery.first_attempt_deadline`.
//!
//! The fan-out and the task share a [`Gate`], so that exactly one of them decides what happens
//! to the delivery:
//! - the task concludes it (delivered and recorded in the inbox, or its retry, deferral or DLQ
//!   entry stored: [`Settled::Concluded`]), or settles it without a POST (a duplicate, a dead
//!   letter, a deferral: also concluded);
//! - the task could not start it (no in-flight permit within [`PERMIT_WAIT`], another copy in
//!   flight, a Redis failure before the POST): the fan-out publishes the delivery message
//!   ([`Settled::HandOver`]);
//! - the deadline passes first (the endpoint is slow): the fan-out takes the delivery back and
//!   publishes the delivery message. A POST already under way finishes in the background: a
//!   success is recorded in the inbox (the delivery message then finds it and sends nothing), a
//!   failure is logged and counted for the endpoint's health, and the delivery message makes the
//!   attempt again (so a slow failing endpoint may see attempt 1 twice, never a delivered event
//!   twice).
//!
//! Every retry or deferral the task publishes carries `Nats-Msg-Id: <event>.<subscription>`,
//! the id the fan-out's delivery message has: whatever a repeated fan-out (after a crash before
//! the event's ack) publishes for the pair is stored once within the duplicate window.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Job;
use crate::context::Ctx;
use crate::event::{Delivery, WebhookEvent};
use crate::ids::SubscriptionId;
use crate::pipeline::Transient;
use crate::pipeline::headers::AttemptState;
use crate::trace_context::TraceContext;

/// How long a first attempt waits for an in-flight permit of its endpoint before the delivery
/// is handed over. Measured: at 20 ms the fan-out benchmark (10 endpoints, 64 events at once,
/// 16 permits each) handed most deliveries over; at 250 ms nats-server spent 23.7 instead of
/// 28.5 us per delivery. The permit wait itself is capped by the endpoint's pace (see
/// [`crate::limiter`]) and counts against the deadline.
pub(super) const PERMIT_WAIT: Duration = Duration::from_millis(250);

const RUNNING: u8 = 0;
const POSTING: u8 = 1;
const CONCLUDING: u8 = 2;
const HANDED_OVER: u8 = 3;
const NOT_STARTED: u8 = 4;

/// Who decides the delivery's fate: the attempt (it got to conclude) or the fan-out (it took
/// the delivery back). Moves only forward, by compare-and-set.
pub(crate) struct Gate(AtomicU8);

impl Gate {
    fn step(&self, from: u8, to: u8) -> bool {
        self.0.compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    fn get(&self) -> u8 {
        self.0.load(Ordering::Acquire)
    }

    /// The attempt cannot start (no permit): the fan-out publishes the delivery message.
    pub(super) fn not_started(&self) {
        self.step(RUNNING, NOT_STARTED);
    }

    /// The attempt is about to POST; false when the fan-out took the delivery back.
    pub(super) fn begin_post(&self) -> bool {
        self.step(RUNNING, POSTING)
    }

    /// The POST is over and the attempt concludes it; false when the fan-out took it back.
    pub(super) fn begin_conclude(&self) -> bool {
        self.step(POSTING, CONCLUDING)
    }

    /// The fan-out takes the delivery back; false once the attempt is concluding or done.
    fn hand_over(&self) -> bool {
        self.step(RUNNING, HANDED_OVER) || self.step(POSTING, HANDED_OVER)
    }
}

/// What a first attempt came to, for the fan-out.
#[derive(Debug)]
pub enum Settled {
    /// Delivered, or its follow-up (retry, deferral, DLQ entry) stored: nothing to publish.
    Concluded,
    /// Publish the delivery message: the deliverer makes the attempt.
    HandOver,
    /// Concluding failed after the POST: the event is tried again (the inbox absorbs a repeat).
    Failed(Transient),
}

/// A first attempt under way.
pub struct FirstAttempt {
    gate: Arc<Gate>,
    task: JoinHandle<Result<(), Transient>>,
}

impl FirstAttempt {
    /// Starts the first attempt of `event` to `sub_id` (`subject`: the delivery subject it would
    /// have been published to); `None` when this process already runs `delivery.concurrency`
    /// first attempts.
    pub fn start(
        ctx: &Ctx,
        event: &WebhookEvent,
        sub_id: SubscriptionId,
        subject: String,
        trace: Option<TraceContext>,
    ) -> Option<FirstAttempt> {
        let slot = ctx.first_attempts.clone().try_acquire_owned().ok()?;
        let gate = Arc::new(Gate(AtomicU8::new(RUNNING)));
        let (ctx, task_gate) = (ctx.clone(), gate.clone());
        let delivery = Delivery { event: event.clone(), subscription_id: sub_id };
        let task = tokio::spawn(async move {
            let _slot = slot;
            let now = OffsetDateTime::now_utc();
            let mut state = AttemptState::from_headers(None, now);
            state.trace = trace;
            let follow_up_id = format!("{}.{}", delivery.event.event_id, delivery.subscription_id);
            let job = Job {
                ctx: &ctx,
                subject: &subject,
                seq: 0,
                follow_up_id,
                now,
                state,
                delivery,
                fifo: false,
                first: Some(&task_gate),
            };
            job.run().await
        });
        Some(FirstAttempt { gate, task })
    }

    /// Waits for the attempt until `deadline`, then takes the delivery back unless the attempt
    /// is already concluding (then waits for that, which is bounded by NATS's and Redis's own
    /// timeouts).
    ///
    /// Once the process is stopping (`stopping`), a pending attempt is seen through instead:
    /// the grace period bounds the wait, and nothing is left for the deliverer that just
    /// stopped.
    pub async fn settle(mut self, deadline: Instant, stopping: &CancellationToken) -> Settled {
        let joined = tokio::select! {
            biased;
            joined = &mut self.task => joined,
            () = stopping.cancelled() => (&mut self.task).await,
            () = tokio::time::sleep_until(deadline) => {
                if self.gate.hand_over() {
                    return Settled::HandOver;
                }
                (&mut self.task).await
            }
        };
        let state = self.gate.get();
        match joined {
            Ok(Ok(())) if state == NOT_STARTED => Settled::HandOver,
            Ok(Ok(())) => Settled::Concluded,
            // Before the POST nothing was sent, and nothing stored that the delivery message
            // would not find (a duplicate's inbox entry, a stored deferral under the same id).
            Ok(Err(_)) | Err(_) if state == RUNNING => Settled::HandOver,
            Ok(Err(e)) => Settled::Failed(e),
            Err(panic) => Settled::Failed(Transient::hold(
                Duration::from_secs(1),
                format!("first attempt ended abnormally: {panic}"),
            )),
        }
    }
}
