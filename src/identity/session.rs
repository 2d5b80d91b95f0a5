//! Session timeouts: the organization's `sessionTimeoutMinutes` capped by its plan's, applied to
//! kubectl writes (age of the login) and to web sessions (idle and absolute).

/// The timeout that applies to an organization: the stricter of its own and its plan's; none
/// when neither sets one.
pub fn effective_timeout_minutes(organization: Option<i32>, plan: Option<i32>) -> Option<i64> {
    match (organization, plan) {
        (Some(o), Some(p)) => Some(i64::from(o.min(p))),
        (Some(v), None) | (None, Some(v)) => Some(i64::from(v)),
        (None, None) => None,
    }
}

/// Whether a kubectl login is recent enough to change an organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionCheck {
    Fresh,
    /// Signed in `age_minutes` ago; the organization allows `limit_minutes`.
    TooOld {
        age_minutes: i64,
        limit_minutes: i64,
    },
}

/// `auth_time` (seconds since the epoch, from the ID token) against the timeout. Credentials
/// without an `auth_time` (certificates, service accounts, API keys) have no login to age.
pub fn kubectl_write_check(auth_time: Option<i64>, now: i64, limit_minutes: Option<i64>) -> SessionCheck {
    match (auth_time, limit_minutes) {
        (Some(at), Some(limit)) if now - at > limit * 60 => {
            SessionCheck::TooOld { age_minutes: (now - at) / 60, limit_minutes: limit }
        }
        _ => SessionCheck::Fresh,
    }
}

/// A web session's times, in seconds since the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionState {
    pub created_at: i64,
    pub last_seen_at: i64,
}

/// How long a web session may be idle and may live at all, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    pub idle_seconds: i64,
    pub absolute_seconds: i64,
}

impl SessionLimits {
    /// The limits for an organization's pages: its effective timeout tightens the idle limit.
    pub fn for_organization(self, effective_minutes: Option<i64>) -> Self {
        match effective_minutes {
            Some(m) => Self { idle_seconds: self.idle_seconds.min(m * 60), ..self },
            None => self,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebSessionVerdict {
    Active,
    /// No request for longer than the idle limit.
    Idle {
        limit_seconds: i64,
    },
    /// Older than the absolute limit, however active.
    Expired {
        limit_seconds: i64,
    },
}

pub fn web_session_verdict(state: SessionState, limits: SessionLimits, now: i64) -> WebSessionVerdict {
    if now - state.created_at > limits.absolute_seconds {
        WebSessionVerdict::Expired { limit_seconds: limits.absolute_seconds }
    } else if now - state.last_seen_at > limits.idle_seconds {
        WebSessionVerdict::Idle { limit_seconds: limits.idle_seconds }
    } else {
        WebSessionVerdict::Active
    }
}
