//! Fixed-window rate limits for self-service requests, kept in memory per node.

use std::collections::HashMap;
use std::sync::Mutex;

use super::ServiceError;

const WINDOW_SECS: i64 = 3600;
/// Upper bound on tracked keys, so a flood of distinct addresses cannot grow memory without
/// bound; expired windows are dropped first.
const MAX_KEYS: usize = 100_000;

#[derive(Default)]
pub struct Limiter {
    windows: Mutex<HashMap<String, (i64, u32)>>,
}

impl Limiter {
    /// Counts one event for `key`; refuses once `limit` events happened in the current hour.
    pub fn check(&self, key: &str, limit: u32, now: i64) -> Result<(), ServiceError> {
        let mut map = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_KEYS {
            map.retain(|_, (start, _)| now - *start < WINDOW_SECS);
        }
        let entry = map.entry(key.to_string()).or_insert((now, 0));
        if now - entry.0 >= WINDOW_SECS {
            *entry = (now, 0);
        }
        if entry.1 >= limit {
            let retry = (entry.0 + WINDOW_SECS - now).max(1) as u64;
            return Err(ServiceError::RateLimited {
                retry_after_secs: retry,
            });
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_the_limit_and_resets_after_the_window() {
        let l = Limiter::default();
        for _ in 0..3 {
            l.check("a", 3, 1000).unwrap();
        }
        assert!(matches!(
            l.check("a", 3, 1001),
            Err(ServiceError::RateLimited {
                retry_after_secs: 3599
            })
        ));
        l.check("b", 3, 1001).unwrap();
        l.check("a", 3, 1000 + WINDOW_SECS).unwrap();
    }
}
