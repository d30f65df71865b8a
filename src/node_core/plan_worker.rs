//! The node core's planning thread: one `std::thread` that runs [`PlanFn`] on the
//! newest [`PlanRequest`] while the core keeps fusing.
//!
//! One slot under a mutex: [`PlanWorker::submit`] puts a request into it, replacing a
//! request still waiting there (the newest request wins; the replaced one is never
//! planned), and wakes the thread; the thread takes the slot's request, plans it
//! without the lock, and appends the outcome to a finished list that
//! [`PlanWorker::take_finished`] drains on the core's next call. [`PlanWorker::discard`]
//! (reset) empties the slot and the list and bumps a generation, so the outcome of a
//! plan that was running then is dropped when it finishes. Dropping the worker asks the
//! thread to stop and does not wait for it: a running plan never delays the node's exit
//! (the thread ends after that plan, or with the process).

use crate::goal_scheduler::{PlanFailure, PlanRequest, PlannedGoal};
use crate::planner::PlannerError;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What the worker runs on each request: [`crate::goal_scheduler::plan`], or a test's
/// or benchmark's stand-in (e.g. one that blocks until released).
pub type PlanFn = Arc<dyn Fn(&PlanRequest) -> Result<PlannedGoal, PlanFailure> + Send + Sync>;

/// A finished plan: its request and outcome.
pub type Finished = (PlanRequest, Result<PlannedGoal, PlanFailure>);

#[derive(Default)]
struct Slot {
    /// The request waiting for the thread (at most one: the newest).
    queued: Option<PlanRequest>,
    /// Whether the thread is planning a request now.
    running: bool,
    /// Outcomes not yet taken by the core, oldest first.
    finished: Vec<Finished>,
    /// Bumped by `discard`: a plan started under an older generation is dropped.
    generation: u64,
    stop: bool,
}

struct Shared {
    slot: Mutex<Slot>,
    /// Signals a change of the slot (a request, a finished plan, stop) to both sides.
    changed: Condvar,
}

impl Shared {
    /// The slot; a panic on the other side (a panicking plan function) does not make
    /// the core unusable: the slot's data is consistent at every unlock.
    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The planning thread and its slot.
pub(crate) struct PlanWorker {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PlanWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.shared.lock();
        f.debug_struct("PlanWorker")
            .field("queued", &s.queued.as_ref().map(|r| r.seq))
            .field("running", &s.running)
            .field("finished", &s.finished.len())
            .finish()
    }
}

impl PlanWorker {
    /// Starts the thread (named `planner`).
    ///
    /// # Panics
    /// When the OS cannot create a thread (as `std::thread::spawn`).
    pub(crate) fn start(plan: PlanFn) -> Self {
        let shared = Arc::new(Shared { slot: Mutex::new(Slot::default()), changed: Condvar::new() });
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name("planner".into())
            .spawn(move || run(&thread_shared, &plan))
            .expect("cannot start the planning thread");
        Self { shared }
    }

    /// Queues `request`, replacing one still waiting (newest wins).
    pub(crate) fn submit(&self, request: PlanRequest) {
        self.shared.lock().queued = Some(request);
        self.shared.changed.notify_all();
    }

    /// The plans finished since the last call, oldest first.
    pub(crate) fn take_finished(&self) -> Vec<Finished> {
        std::mem::take(&mut self.shared.lock().finished)
    }

    /// Forgets the waiting request, the finished plans and the one running now.
    pub(crate) fn discard(&self) {
        let mut s = self.shared.lock();
        s.queued = None;
        s.finished.clear();
        s.generation += 1;
    }

    /// Blocks until nothing is waiting or running (or `timeout` passed); true when idle.
    /// For tests, benchmarks and a replay that wants every plan's outcome.
    pub(crate) fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.shared.lock();
        while s.queued.is_some() || s.running {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            s = self.shared.changed.wait_timeout(s, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        true
    }
}

impl Drop for PlanWorker {
    fn drop(&mut self) {
        let mut s = self.shared.lock();
        s.stop = true;
        s.queued = None;
        drop(s);
        self.shared.changed.notify_all();
    }
}

/// The thread: wait for a request, plan it, hand the outcome over, until stopped.
fn run(shared: &Shared, plan: &PlanFn) {
    loop {
        let (request, generation) = {
            let mut s = shared.lock();
            loop {
                if s.stop {
                    return;
                }
                if let Some(r) = s.queued.take() {
                    s.running = true;
                    break (r, s.generation);
                }
                s = shared.changed.wait(s).unwrap_or_else(|e| e.into_inner());
            }
        };
        // A panicking plan function must neither leave `running` set (wait_idle would
        // hang) nor swallow the outcome (the scheduler would await it for ever, and only
        // the re-plan timer would ask again): it finishes as a failure.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| plan(&request))).unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            Err(PlanFailure { landmark_id: request.landmark_id.clone(), error: PlannerError::Panicked(message) })
        });
        let mut s = shared.lock();
        s.running = false;
        if s.generation == generation && !s.stop {
            s.finished.push((request, outcome));
        }
        drop(s);
        shared.changed.notify_all();
    }
}
