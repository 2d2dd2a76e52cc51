//! [`PodmanApi`]: [`Podman`] over podman's REST API, with podman-api.
//!
//! podman-api is async (hyper on tokio). Each call here runs to its end on a
//! single-threaded tokio runtime the `PodmanApi` owns, so that a switch, which
//! is plain blocking code, can call it like any other function. Calls from
//! several threads at once are fine: they share the runtime's I/O driver.
//!
//! Only endpoints whose podman-api models parse podman 5.4's answers are
//! used (lists, `exists`, build, pull, delete); see `convert`. Creating a
//! secret and inspecting a container go around podman-api; see `raw`.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use containers_api::conn::hyper::StatusCode;
use futures_util::StreamExt;
use podman_api::opts::{
    ContainerDeleteOpts, ContainerListOpts, ImageBuildOpts, ImageListOpts, PullOpts,
};

use crate::output::{BUILD_TAIL_LINES, Tail};
use crate::raw::{RawClient, RawError};
use crate::{ContainerInfo, Error, ImageInfo, Podman, Result, convert, lost};

/// How long a call that should be quick (a list, a check, a removal after
/// its stop timeout) may take: podman answers them in milliseconds, but
/// the first call starts the socket-activated service, and a busy node is
/// slow.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// podman's API on its unix socket.
pub struct PodmanApi {
    socket: PathBuf,
    podman: podman_api::Podman,
    raw: RawClient,
    runtime: tokio::runtime::Runtime,
    call_timeout: Duration,
}

impl fmt::Debug for PodmanApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PodmanApi")
            .field("socket", &self.socket)
            .field("call_timeout", &self.call_timeout)
            .finish_non_exhaustive()
    }
}

/// Why a call failed, before it is told apart as an [`Error`].
enum Failure {
    /// podman-api's error: a connection failure or a refusal.
    Api(podman_api::Error),
    /// podman's own message (from a build or pull stream, or a raw call).
    Said(String),
    /// The socket could not be connected to.
    Connect(String),
}

impl From<podman_api::Error> for Failure {
    fn from(e: podman_api::Error) -> Self {
        Failure::Api(e)
    }
}

impl PodmanApi {
    /// Connects to the podman API socket `socket` ([`crate::DEFAULT_SOCKET`]
    /// on a node) and checks that podman answers there.
    pub fn connect(socket: &Path) -> Result<Self> {
        if !socket.exists() {
            return Err(Error::SocketMissing {
                socket: socket.to_path_buf(),
            });
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(Error::Runtime)?;
        let api = PodmanApi {
            socket: socket.to_path_buf(),
            podman: podman_api::Podman::unix(socket),
            raw: RawClient::new(socket),
            runtime,
            call_timeout: DEFAULT_CALL_TIMEOUT,
        };
        let ping = api.run("answer a ping", Some(api.call_timeout), async {
            api.podman.ping().await.map(drop).map_err(Failure::from)
        });
        ping?
            .map_err(|failure| api.error(failure, |message| api_error("answer a ping", message)))?;
        Ok(api)
    }

    /// Sets how long a quick call may take ([`DEFAULT_CALL_TIMEOUT`]);
    /// builds and pulls have no limit but their own.
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// The socket this talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Runs `call` to its end, for at most `limit`.
    fn run<T>(
        &self,
        what: &str,
        limit: Option<Duration>,
        call: impl Future<Output = Result<T, Failure>>,
    ) -> Result<Result<T, Failure>> {
        match limit {
            None => Ok(self.runtime.block_on(call)),
            Some(after) => self
                .runtime
                .block_on(async { tokio::time::timeout(after, call).await })
                .map_err(|_| Error::Timeout {
                    what: what.to_owned(),
                    after,
                }),
        }
    }

    /// A quick call: `run` with the call timeout, a failure made an
    /// [`Error::Api`] saying `what` failed.
    fn quick<T>(&self, what: &str, call: impl Future<Output = Result<T, Failure>>) -> Result<T> {
        self.run(what, Some(self.call_timeout), call)?
            .map_err(|failure| self.error(failure, |message| api_error(what, message)))
    }

    /// The error for `failure`: a connection failure is the same whatever
    /// the call (the socket is missing or dead); anything else is what
    /// `refused` makes of podman's message.
    fn error(&self, failure: Failure, refused: impl FnOnce(String) -> Error) -> Error {
        let message = match failure {
            Failure::Api(e) => match connect_failure(&e) {
                Some(message) => return self.unreachable(message),
                None => api_message(&e),
            },
            Failure::Connect(message) => return self.unreachable(message),
            Failure::Said(message) => message,
        };
        refused(message)
    }

    fn unreachable(&self, message: String) -> Error {
        if self.socket.exists() {
            Error::Unreachable {
                socket: self.socket.clone(),
                message,
            }
        } else {
            Error::SocketMissing {
                socket: self.socket.clone(),
            }
        }
    }
}

fn api_error(what: &str, message: String) -> Error {
    Error::Api {
        what: what.to_owned(),
        message,
    }
}

/// The podman-api error inside `e`: podman-api hands the errors of the
/// streaming calls (build, pull) over as I/O errors wrapping its own.
fn unwrapped(e: &podman_api::Error) -> &podman_api::Error {
    match e {
        podman_api::Error::IO(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<podman_api::Error>())
            .map_or(e, unwrapped),
        e => e,
    }
}

/// The message of a failed connection (no socket, nobody listening), or
/// `None` if the connection was made. (hyper's message names the cause.)
fn connect_failure(e: &podman_api::Error) -> Option<String> {
    match unwrapped(e) {
        podman_api::Error::Error(podman_api::conn::Error::Hyper(e)) if e.is_connect() => {
            Some(e.to_string())
        }
        _ => None,
    }
}

/// podman's message in a podman-api error, with the HTTP status of a
/// refusal.
fn api_message(e: &podman_api::Error) -> String {
    match unwrapped(e) {
        podman_api::Error::Fault { code, message } => format!("{message} (HTTP {code})"),
        podman_api::Error::ServerError(e) => convert::stream_error(e),
        e => e.to_string(),
    }
}

/// Whether a podman-api error is podman saying "no such ...".
fn is_not_found(e: &podman_api::Error) -> bool {
    matches!(e, podman_api::Error::Fault { code, .. } if *code == StatusCode::NOT_FOUND)
}

/// Checks that `text` can be put in a request path as it is: podman-api
/// does not escape the names it puts there, and a `?`, `#` or `..` would
/// make the request about something else.
fn check_path_part(what: &str, text: &str, slash_ok: bool) -> Result<()> {
    let fits = |c: char| c.is_ascii_alphanumeric() || "._-:@".contains(c) || (slash_ok && c == '/');
    let segments_fit = text
        .split('/')
        .all(|segment| !matches!(segment, "" | "." | ".."));
    if text.chars().all(fits) && segments_fit {
        Ok(())
    } else {
        Err(api_error(what, format!("{text:?} is not a valid name")))
    }
}

/// Seconds for podman's stop timeout: a fraction of a second is rounded up,
/// so that a timeout asked for is never zero (an immediate SIGKILL).
fn stop_seconds(timeout: Duration) -> usize {
    let whole = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
    usize::try_from(whole).unwrap_or(usize::MAX)
}

impl Podman for PodmanApi {
    fn clear_lost_networking(&self, run: &Path) -> Result<Vec<String>> {
        if let Some(why) = lost::left_alone(&self.containers()?) {
            return Ok(vec![why]);
        }
        lost::clear(run)
    }

    fn images(&self) -> Result<Vec<ImageInfo>> {
        self.quick("list images", async {
            let listed = self.podman.images().list(&ImageListOpts::default()).await?;
            Ok(listed.into_iter().map(convert::image).collect())
        })
    }

    fn image_exists(&self, reference: &str) -> Result<bool> {
        let what = format!("check for image {reference}");
        check_path_part(&what, reference, true)?;
        self.quick(&what, async {
            Ok(self.podman.images().get(reference).exists().await?)
        })
    }

    fn pull(&self, reference: &str) -> Result<()> {
        let what = format!("pull {reference}");
        let opts = PullOpts::builder().reference(reference).build();
        let pulled = self.run(&what, None, async {
            let images = self.podman.images();
            let mut reports = images.pull(&opts);
            while let Some(report) = reports.next().await {
                if let Some(error) = report?.error {
                    return Err(Failure::Said(error.trim().to_owned()));
                }
            }
            Ok(())
        })?;
        pulled.map_err(|failure| {
            self.error(failure, |message| Error::Pull {
                reference: reference.to_owned(),
                message,
            })
        })
    }

    fn build(&self, context: &Path, tag: &str) -> Result<()> {
        let failed = |message: String, output: String| Error::Build {
            context: context.to_path_buf(),
            tag: tag.to_owned(),
            message,
            output,
        };
        if !context.is_dir() {
            return Err(failed(
                "the build context is not a folder".into(),
                String::new(),
            ));
        }
        // podman looks for these two (in this order) and says less clearly
        // that neither is there.
        if !["Containerfile", "Dockerfile"]
            .iter()
            .any(|file| context.join(file).is_file())
        {
            return Err(failed(
                "the build context has no Containerfile or Dockerfile".into(),
                String::new(),
            ));
        }
        let Some(context_str) = context.to_str() else {
            return Err(failed(
                "the build context's path is not UTF-8".into(),
                String::new(),
            ));
        };
        let opts = ImageBuildOpts::builder(context_str).tag(tag).build();
        let images = self.podman.images();
        // The context is packed (a gzipped tar in memory) here, before any
        // request.
        let mut chunks = images.build(&opts).map_err(|e| {
            failed(
                format!("cannot pack the build context: {}", api_message(&e)),
                String::new(),
            )
        })?;
        let mut tail = Tail::new(BUILD_TAIL_LINES);
        let built = self.run(&format!("build {tag}"), None, async {
            while let Some(chunk) = chunks.next().await {
                match chunk {
                    Ok(chunk) => tail.push(&chunk.stream),
                    Err(podman_api::Error::ServerError(e)) => {
                        // A line that is no output: an error if it says one.
                        let message = convert::stream_error(&e);
                        if !message.is_empty() {
                            return Err(Failure::Said(message));
                        }
                    }
                    Err(e) => return Err(Failure::Api(e)),
                }
            }
            Ok(())
        })?;
        let output = tail.finish();
        built.map_err(|failure| self.error(failure, |message| failed(message, output)))
    }

    fn containers(&self) -> Result<Vec<ContainerInfo>> {
        self.quick("list containers", async {
            let opts = ContainerListOpts::builder().all(true).build();
            let listed = self.podman.containers().list(&opts).await?;
            Ok(listed.into_iter().map(convert::container).collect())
        })
    }

    fn containers_and_images(&self) -> Result<(Vec<ContainerInfo>, Vec<ImageInfo>)> {
        self.quick("list containers and images", async {
            let opts = ContainerListOpts::builder().all(true).build();
            let containers = self.podman.containers();
            let images = self.podman.images();
            let image_opts = ImageListOpts::default();
            // Two requests in flight on one runtime: the slower one's time,
            // not the sum.
            let (listed, found) =
                futures_util::future::join(containers.list(&opts), images.list(&image_opts)).await;
            Ok((
                listed?.into_iter().map(convert::container).collect(),
                found?.into_iter().map(convert::image).collect(),
            ))
        })
    }

    fn inspect_container(&self, name: &str) -> Result<Option<crate::ContainerDetails>> {
        let what = format!("inspect container {name}");
        check_path_part(&what, name, false)?;
        let raw = |path: String| async move {
            self.raw.get_json(&path).await.map_err(|e| match e {
                RawError::Connect(message) => Failure::Connect(message),
                RawError::Failed(message) => Failure::Said(message),
            })
        };
        self.quick(&what, async {
            let Some(json) = raw(format!("/containers/{name}/json")).await? else {
                return Ok(None);
            };
            let mut details = crate::inspect::container(&json);
            // The image's own environment is not the container's doing.
            if !details.image_id.is_empty() {
                let image = raw(format!("/images/{}/json", details.image_id)).await?;
                if let Some(image) = image {
                    details.image_env_keys = crate::inspect::env_keys(&image["Config"]["Env"]);
                }
            }
            Ok(Some(details))
        })
    }

    fn remove_container(&self, name: &str, timeout: Duration) -> Result<()> {
        let what = format!("remove container {name}");
        check_path_part(&what, name, false)?;
        // One request: podman stops the container (SIGKILL after `timeout`)
        // and removes it; `v=false` keeps its volumes.
        let opts = ContainerDeleteOpts::builder()
            .force(true)
            .timeout(stop_seconds(timeout))
            .volumes(false)
            .build();
        let limit = self.call_timeout.saturating_add(timeout);
        let removed = self.run(&what, Some(limit), async {
            match self.podman.containers().get(name).delete(&opts).await {
                Err(e) if is_not_found(&e) => Ok(()),
                other => other.map_err(Failure::from),
            }
        })?;
        removed.map_err(|failure| self.error(failure, |message| api_error(&what, message)))
    }

    fn secret_names(&self) -> Result<std::collections::BTreeSet<String>> {
        self.quick("list secrets", async {
            let listed = self.podman.secrets().list().await?;
            Ok(listed
                .into_iter()
                .filter_map(convert::secret_name)
                .collect())
        })
    }

    fn put_secret(&self, name: &str, value: &[u8]) -> Result<()> {
        let what = format!("create secret {name}");
        check_path_part(&what, name, false)?;
        self.quick(&what, async {
            self.raw.put_secret(name, value).await.map_err(|e| match e {
                RawError::Connect(message) => Failure::Connect(message),
                RawError::Failed(message) => Failure::Said(message),
            })
        })
    }

    fn remove_secret(&self, name: &str) -> Result<()> {
        let what = format!("remove secret {name}");
        check_path_part(&what, name, false)?;
        self.quick(&what, async {
            match self.podman.secrets().get(name).delete().await {
                Err(e) if is_not_found(&e) => Ok(()),
                other => other.map_err(Failure::from),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_timeouts_round_up_to_whole_seconds() {
        assert_eq!(stop_seconds(Duration::ZERO), 0);
        assert_eq!(stop_seconds(Duration::from_millis(1)), 1);
        assert_eq!(stop_seconds(Duration::from_secs(10)), 10);
        assert_eq!(stop_seconds(Duration::from_millis(10_500)), 11);
    }

    #[test]
    fn names_that_would_change_the_request_are_refused() {
        for ok in [
            "db",
            "app_1.x-y",
            "localhost/testbed/busybox:latest",
            "a@sha256:0f",
        ] {
            check_path_part("x", ok, true).unwrap();
        }
        for bad in ["", "a?b", "a#b", "a b", "a%2f", "../x", "a//b", "a/", "é"] {
            assert!(check_path_part("x", bad, true).is_err(), "{bad:?}");
        }
        let e = check_path_part("remove container a/b", "a/b", false).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"podman failed to remove container a/b: "a/b" is not a valid name"#
        );
    }

    #[test]
    fn a_socket_nobody_listens_on_is_unreachable() {
        let dir = std::env::temp_dir().join(format!("archy-podman-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("dead.sock");
        let _ = std::fs::remove_file(&socket);
        drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
        let e = PodmanApi::connect(&socket).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(e, Error::Unreachable { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains("Connection refused"), "{text}");
        assert!(text.ends_with("(systemctl start podman.socket)"), "{text}");
    }

    #[test]
    fn a_missing_socket_is_said_with_the_fix() {
        let e = PodmanApi::connect(Path::new("/nonexistent/podman.sock")).unwrap_err();
        assert!(matches!(e, Error::SocketMissing { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "no podman API socket at /nonexistent/podman.sock: \
             start podman.socket (systemctl start podman.socket)"
        );
    }
}
