//! One bounded wait, for everything that is waited on: a cluster becoming
//! available or being deleted, a Serverless workgroup likewise, and a SQL
//! statement finishing.
//!
//! Why one: each of those is "ask, and either stop or sleep and ask again",
//! and each copy of that loop is a chance to forget the deadline, to sleep
//! past it, or to leave a progress line on the screen. The SDK's own waiters
//! cover clusters but not workgroups or statements, and none of them
//! reports progress as it goes.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::report::Observer;

/// How a wait is paced: the first delay, the longest delay (the delay grows
/// by `growth` after each check, a quarter unless set, until it reaches
/// it), and the deadline.
///
/// A control-plane wait uses one fixed interval (`first == max`): a cluster
/// takes minutes whatever we do. A statement starts fast and slows down: a
/// short one finishes in well under a second, and a long `COPY` should not
/// cost hundreds of calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Polling {
    /// The first delay between checks.
    pub first: Duration,
    /// The longest delay; the delay grows by a quarter each check up to this.
    pub max: Duration,
    /// How long to wait in all before giving up.
    pub timeout: Duration,
    /// Each delay is the one before times `growth` percent (125: a quarter
    /// longer; 200: doubling).
    pub growth: u32,
}

impl Polling {
    /// The same `interval` between checks, until `timeout`.
    pub fn every(interval: Duration, timeout: Duration) -> Self {
        Self {
            first: interval,
            max: interval,
            timeout,
            growth: 125,
        }
    }
}

impl Default for Polling {
    /// 10 ms growing to 1 s, for at most 15 minutes: the statements' pace.
    ///
    /// Why so short a first delay: most statements a load sends (DDL, a
    /// count, a small COPY) end within tens of milliseconds, and a first
    /// check 100 ms late made each of them cost 100 ms, whatever it did.
    /// Why it grows by only a quarter: a statement is seen to end at most a
    /// quarter of its run late (by half, a 220 ms batch was seen at 320 ms).
    /// Why a 1 s cap: a load's batches run for seconds, and a later check
    /// is time the user waits; one `DescribeStatement` a second for a
    /// statement that runs for minutes is still nothing to the service.
    /// The cap is reached after four seconds, 21 checks in.
    fn default() -> Self {
        Self {
            first: Duration::from_millis(10),
            max: Duration::from_secs(1),
            timeout: Duration::from_secs(900),
            growth: 125,
        }
    }
}

/// What one check found.
#[derive(Debug)]
pub enum Poll<T> {
    /// Done: the wait returns this.
    Ready(T),
    /// Not yet; the state as the user should see it (`creating, role
    /// adding`), shown while waiting and in the timeout error.
    Pending(String),
}

/// Calls `check` until it returns [`Poll::Ready`] or an error, sleeping
/// between calls as `polling` says; tells `observer` each state while it
/// waits, and clears its line when the wait is over.
///
/// Gives up with [`Error::Timeout`] (naming `what`, the last state seen and
/// `hint`, what the user can do) rather than sleep past `polling.timeout`:
/// a check is never followed by a sleep that would end after the deadline.
///
/// ```
/// use std::time::Duration;
/// use s3_to_redshift::report::Quiet;
/// use s3_to_redshift::wait::{Poll, Polling, wait_until};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let polling = Polling::every(Duration::from_secs(10), Duration::from_secs(60));
/// let mut checks = 0;
/// let n = wait_until("the third check", &polling, "", &Quiet, async || {
///     checks += 1;
///     Ok(if checks == 3 { Poll::Ready(checks) } else { Poll::Pending("early".into()) })
/// })
/// .await;
/// assert_eq!(n.unwrap(), 3);
///
/// let never = wait_until("never", &polling, "raise the timeout", &Quiet, async || {
///     Ok(Poll::<()>::Pending("stuck".into()))
/// })
/// .await;
/// let err = never.unwrap_err().to_string();
/// assert!(err.contains("never") && err.contains("stuck"), "{err}");
/// # }
/// ```
pub async fn wait_until<T>(
    what: &str,
    polling: &Polling,
    hint: &str,
    observer: &dyn Observer,
    mut check: impl AsyncFnMut() -> Result<Poll<T>>,
) -> Result<T> {
    // tokio's clock, not std's: the same in production, and under a paused
    // test clock the deadline advances with the sleeps instead of never.
    let start = tokio::time::Instant::now();
    let mut delay = polling.first;
    let result = loop {
        let state = match check().await {
            Ok(Poll::Ready(done)) => break Ok(done),
            Ok(Poll::Pending(state)) => state,
            Err(e) => break Err(e),
        };
        if start.elapsed() + delay > polling.timeout {
            break Err(Error::Timeout {
                what: what.to_string(),
                waited: start.elapsed(),
                last_state: state,
                hint: hint.to_string(),
            });
        }
        observer.waiting(what, &state, start.elapsed());
        tokio::time::sleep(delay).await;
        delay = (delay * polling.growth.max(100) / 100).min(polling.max.max(polling.first));
    };
    observer.wait_over();
    result
}
