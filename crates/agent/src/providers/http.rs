//! Model API calls: retries with backoff and errors classified for the user.

use std::time::Duration;

/// What went wrong with a model API call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Credentials refused (401/403).
    Auth,
    /// Out of credit or quota.
    Quota,
    /// Too many requests (429).
    RateLimit,
    /// The service is overloaded or failing (5xx, 529).
    Overloaded,
    /// The request could not be made or the stream broke.
    Transport,
    /// The request was refused as invalid (4xx).
    Request,
}

/// A classified API error.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// Class.
    pub kind: ErrorKind,
    /// HTTP status, if any.
    pub status: Option<u16>,
    /// The API's message.
    pub message: String,
    /// Server-suggested wait.
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self
            .status
            .map(|s| format!(" (HTTP {s})"))
            .unwrap_or_default();
        match self.kind {
            ErrorKind::Auth => write!(f, "authentication problem: the model API refused the credentials{status}: {}. Check the API key configured on the host (nanoclaw doctor).", self.message),
            ErrorKind::Quota => write!(f, "quota problem: the model account is out of credit or quota{status}: {}", self.message),
            ErrorKind::RateLimit => write!(f, "rate limited by the model API{status}: {}", self.message),
            ErrorKind::Overloaded => write!(f, "the model API is overloaded or failing{status}: {}", self.message),
            ErrorKind::Transport => write!(f, "cannot reach the model API: {}", self.message),
            ErrorKind::Request => write!(f, "the model API refused the request{status}: {}", self.message),
        }
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// A transport failure.
    pub fn transport(e: impl std::fmt::Display) -> Self {
        Self {
            kind: ErrorKind::Transport,
            status: None,
            message: e.to_string(),
            retry_after: None,
        }
    }

    /// Classifies an HTTP error answer from its status, error type and message.
    pub fn from_status(
        status: u16,
        error_type: &str,
        message: String,
        retry_after: Option<Duration>,
    ) -> Self {
        let lower = format!("{error_type} {message}").to_ascii_lowercase();
        let kind = match status {
            401 | 403 => ErrorKind::Auth,
            402 => ErrorKind::Quota,
            429 if lower.contains("quota")
                || lower.contains("credit")
                || lower.contains("billing") =>
            {
                ErrorKind::Quota
            }
            429 => ErrorKind::RateLimit,
            400 if lower.contains("credit balance") => ErrorKind::Quota,
            408 | 409 | 500..=599 => ErrorKind::Overloaded,
            _ => ErrorKind::Request,
        };
        Self {
            kind,
            status: Some(status),
            message,
            retry_after,
        }
    }

    /// Worth another try?
    pub fn retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::RateLimit | ErrorKind::Overloaded | ErrorKind::Transport
        )
    }
}

/// Retry policy of model calls.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all.
    pub attempts: u32,
    /// First backoff; doubles each time.
    pub base: Duration,
    /// Longest single wait.
    pub max: Duration,
}

impl Retry {
    /// The configured policy.
    pub fn from_config(cfg: &crate::Config) -> Self {
        Self {
            attempts: cfg.retry_attempts,
            base: cfg.retry_base,
            max: Duration::from_secs(60),
        }
    }

    /// Runs `f` until it succeeds, fails for good, or attempts run out.
    pub async fn run<T, F, Fut>(&self, mut f: F) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) if e.retryable() && attempt < self.attempts => {
                    let backoff = self
                        .base
                        .saturating_mul(1 << (attempt - 1).min(16))
                        .min(self.max);
                    let wait = e.retry_after.map_or(backoff, |r| r.min(self.max));
                    tracing::warn!(attempt, error = %e, wait_ms = wait.as_millis() as u64, "model call failed; retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Reads an error answer into an [`ApiError`] (both APIs put `{error: {type, message}}` in the body).
pub async fn error_from(resp: reqwest::Response) -> ApiError {
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<f64>().ok())
        .map(Duration::from_secs_f64);
    let body = resp.text().await.unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let err = &v["error"];
    let etype = err["type"]
        .as_str()
        .or(err["code"].as_str())
        .unwrap_or("")
        .to_string();
    let msg = err["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| body.chars().take(300).collect());
    ApiError::from_status(
        status,
        &etype,
        if etype.is_empty() {
            msg
        } else {
            format!("{etype}: {msg}")
        },
        retry_after,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(
            ApiError::from_status(401, "authentication_error", "x".into(), None).kind,
            ErrorKind::Auth
        );
        assert_eq!(
            ApiError::from_status(529, "overloaded_error", "x".into(), None).kind,
            ErrorKind::Overloaded
        );
        assert_eq!(
            ApiError::from_status(429, "insufficient_quota", "x".into(), None).kind,
            ErrorKind::Quota
        );
        assert_eq!(
            ApiError::from_status(429, "rate_limit_error", "x".into(), None).kind,
            ErrorKind::RateLimit
        );
        assert!(!ApiError::from_status(400, "invalid_request_error", "x".into(), None).retryable());
        assert!(
            ApiError::from_status(401, "authentication_error", "bad key".into(), None)
                .to_string()
                .starts_with("authentication problem")
        );
    }
}
