//! The requests podman-api cannot make right: creating a secret, and
//! inspecting a container (its model fails on podman 5's answer; see
//! `inspect`).
//!
//! podman-api's `Secrets::create` sends the value JSON-encoded, and podman
//! stores the request body as it is, so a secret `hunter2` became
//! `"hunter2"`, quotes included; it also takes only UTF-8 and cannot ask for
//! `replace`. This sends the bytes themselves, with `replace=true`, through
//! the transport podman-api is built on (containers-api's, over the same
//! unix socket).

use std::path::Path;

use containers_api::conn::hyper::{self, Body, Request, StatusCode, header};
use containers_api::conn::{self, Transport};
use containers_api::url;

/// The libpod API the raw requests are written for (podman 5).
const LIBPOD: &str = "/v5.0.0/libpod";

/// A request that failed: whether podman could not be reached at all, or
/// answered with an error.
#[derive(Debug)]
pub(crate) enum RawError {
    /// No connection: the socket's error.
    Connect(String),
    /// podman's answer to a request it refused, or a broken exchange.
    Failed(String),
}

/// Requests to podman's API outside podman-api.
#[derive(Debug)]
pub(crate) struct RawClient {
    transport: Transport,
}

impl RawClient {
    pub(crate) fn new(socket: &Path) -> Self {
        RawClient {
            transport: Transport::Unix {
                client: hyper::Client::builder()
                    .pool_max_idle_per_host(0)
                    .build(conn::get_unix_connector()),
                path: socket.to_path_buf(),
            },
        }
    }

    /// `POST /libpod/secrets/create?name=NAME&replace=true` with `value` as
    /// the body. The body is neither logged nor part of any error.
    pub(crate) async fn put_secret(&self, name: &str, value: &[u8]) -> Result<(), RawError> {
        let query = url::encoded_pairs([("name", name), ("replace", "true")]);
        let endpoint = url::construct_ep(format!("{LIBPOD}/secrets/create"), Some(query));
        let uri = self
            .transport
            .make_uri(&endpoint)
            .map_err(|e| RawError::Failed(e.to_string()))?;
        // Not a form: podman would read (and so empty) a form body first.
        let request = Request::post(uri)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(Body::from(value.to_vec()))
            .map_err(|e| RawError::Failed(e.to_string()))?;
        let response = self.transport.request(request).await.map_err(|e| match e {
            conn::Error::Hyper(e) if e.is_connect() => RawError::Connect(e.to_string()),
            e => RawError::Failed(e.to_string()),
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = hyper::body::to_bytes(response.into_body())
            .await
            .map_err(|e| RawError::Failed(e.to_string()))?;
        Err(RawError::Failed(refusal(status, &body)))
    }
}

impl RawClient {
    /// `GET LIBPOD/PATH` as JSON; `None` when podman says there is no such
    /// thing (HTTP 404).
    pub(crate) async fn get_json(&self, path: &str) -> Result<Option<serde_json::Value>, RawError> {
        let endpoint = format!("{LIBPOD}{path}");
        let uri = self
            .transport
            .make_uri(&endpoint)
            .map_err(|e| RawError::Failed(e.to_string()))?;
        let request = Request::get(uri)
            .body(Body::empty())
            .map_err(|e| RawError::Failed(e.to_string()))?;
        let response = self.transport.request(request).await.map_err(|e| match e {
            conn::Error::Hyper(e) if e.is_connect() => RawError::Connect(e.to_string()),
            e => RawError::Failed(e.to_string()),
        })?;
        let status = response.status();
        let body = hyper::body::to_bytes(response.into_body())
            .await
            .map_err(|e| RawError::Failed(e.to_string()))?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(RawError::Failed(refusal(status, &body)));
        }
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| RawError::Failed(format!("podman's answer is not JSON: {e}")))
    }
}

/// podman's error answer (`{"cause": .., "message": .., "response": ..}`)
/// as a message, or the body itself if it is something else.
fn refusal(status: StatusCode, body: &[u8]) -> String {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    format!("{message} (HTTP {status})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_podmans_message_and_the_status() {
        let body =
            br#"{"cause":"secret name in use","message":"s1: secret name in use","response":500}"#;
        assert_eq!(
            refusal(StatusCode::INTERNAL_SERVER_ERROR, body),
            "s1: secret name in use (HTTP 500 Internal Server Error)"
        );
        assert_eq!(
            refusal(StatusCode::BAD_GATEWAY, b"  no json\n"),
            "no json (HTTP 502 Bad Gateway)"
        );
    }
}
