//! Upstream's max-in-flight filter (`--max-requests-inflight`,
//! `--max-mutating-requests-inflight`): at most so many read-only (get, list, watch) and
//! mutating requests are served at once; one more gets 429 with `Retry-After: 1`, unless
//! its user is in `system:masters` (then it is served anyway). Long-running requests
//! (watches, proxies, exec, attach, logs, port-forwards) are not counted. A limit of 0
//! turns that half off. API Priority and Fairness is not built: these limits are what
//! upstream enforces with `--enable-priority-and-fairness=false`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::response::Response;
use http::{HeaderValue, StatusCode, header};

use crate::auth::authz::Attributes;

/// Upstream's `--max-requests-inflight` default.
pub const DEFAULT_READONLY: usize = 400;
/// Upstream's `--max-mutating-requests-inflight` default.
pub const DEFAULT_MUTATING: usize = 200;

/// The limits and what is in flight now.
#[derive(Debug)]
pub struct InFlight {
    max_readonly: AtomicUsize,
    max_mutating: AtomicUsize,
    readonly: AtomicUsize,
    mutating: AtomicUsize,
}

impl Default for InFlight {
    fn default() -> Self {
        Self {
            max_readonly: AtomicUsize::new(DEFAULT_READONLY),
            max_mutating: AtomicUsize::new(DEFAULT_MUTATING),
            readonly: AtomicUsize::new(0),
            mutating: AtomicUsize::new(0),
        }
    }
}

/// A request refused because its half is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooMany;

/// A slot, given back when dropped.
#[derive(Debug)]
pub struct Permit {
    limits: Arc<InFlight>,
    mutating: bool,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limits
            .counter(self.mutating)
            .fetch_sub(1, Ordering::AcqRel);
    }
}

/// Upstream's long-running request check: watch and proxy verbs, and the attach, exec,
/// proxy, log and portforward subresources.
pub fn long_running(a: &Attributes) -> bool {
    a.resource_request
        && (matches!(a.verb.as_str(), "watch" | "proxy")
            || matches!(
                a.subresource.as_str(),
                "attach" | "exec" | "proxy" | "log" | "portforward"
            ))
}

/// Refused: upstream's plain-text 429.
pub fn too_many_requests() -> Response {
    let mut r = Response::new(axum::body::Body::from(
        "Too many requests, please try again later.\n",
    ));
    *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let h = r.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

impl InFlight {
    /// Sets both limits (0: unlimited).
    pub fn set_limits(&self, readonly: usize, mutating: usize) {
        self.max_readonly.store(readonly, Ordering::Relaxed);
        self.max_mutating.store(mutating, Ordering::Relaxed);
    }

    fn counter(&self, mutating: bool) -> &AtomicUsize {
        if mutating {
            &self.mutating
        } else {
            &self.readonly
        }
    }

    /// Takes a slot for a request: `Ok(None)` when it is not counted, `Err` when it must
    /// be refused.
    pub fn admit(self: &Arc<Self>, a: &Attributes) -> Result<Option<Permit>, TooMany> {
        if long_running(a) {
            return Ok(None);
        }
        let mutating = !matches!(a.verb.as_str(), "get" | "list" | "watch");
        let max = if mutating {
            self.max_mutating.load(Ordering::Relaxed)
        } else {
            self.max_readonly.load(Ordering::Relaxed)
        };
        if max == 0 {
            return Ok(None);
        }
        let counter = self.counter(mutating);
        let taken = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        });
        match taken {
            Ok(_) => Ok(Some(Permit {
                limits: Arc::clone(self),
                mutating,
            })),
            Err(_) if a.user.groups.iter().any(|g| g == "system:masters") => Ok(None),
            Err(_) => Err(TooMany),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::UserInfo;

    fn attrs(user: UserInfo, verb: &str, sub: &str) -> Attributes {
        Attributes {
            user,
            verb: verb.into(),
            resource_request: true,
            resource: "pods".into(),
            subresource: sub.into(),
            ..Default::default()
        }
    }

    #[test]
    fn limits_count_each_kind_and_exempt_masters_and_long_running() {
        let l = Arc::new(InFlight::default());
        l.set_limits(1, 1);
        let jane = UserInfo::new("jane", []);
        let first = l.admit(&attrs(jane.clone(), "list", "")).unwrap();
        assert!(first.is_some());
        assert!(l.admit(&attrs(jane.clone(), "get", "")).is_err());
        // The mutating half has its own slot.
        let m = l.admit(&attrs(jane.clone(), "create", "")).unwrap();
        assert!(m.is_some());
        assert!(l.admit(&attrs(jane.clone(), "delete", "")).is_err());
        // Watches and logs are not counted; masters are served when full.
        assert!(
            l.admit(&attrs(jane.clone(), "watch", ""))
                .unwrap()
                .is_none()
        );
        assert!(
            l.admit(&attrs(jane.clone(), "get", "log"))
                .unwrap()
                .is_none()
        );
        assert!(
            l.admit(&attrs(UserInfo::loopback(), "get", ""))
                .unwrap()
                .is_none()
        );
        drop(first);
        assert!(l.admit(&attrs(jane, "get", "")).unwrap().is_some());
    }
}
