//! `data/control.sock`: the running host's admin endpoint. JSON lines: one [`Request`] per
//! line in, one [`Response`] per line out, several per connection. Mode 0600.

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::{execute, needs_refresh, Request, Response};
use crate::Host;

/// Longest accepted request line.
pub const MAX_REQUEST: usize = 1 << 20;

/// Serves the control socket until the host shuts down (never panics; failures are logged).
pub async fn serve(host: Arc<Host>) {
    let path = host.home.control_sock();
    let listener = match bind(&path) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "control socket unavailable: `nanoclaw ctl` will write the DB directly");
            return;
        }
    };
    let h = host.clone();
    let exec = move |req: Request| {
        let host = h.clone();
        async move { handle(&host, req).await }
    };
    tokio::select! {
        _ = serve_listener(listener, exec) => {}
        _ = host.shutdown_signal() => {}
    }
    let _ = std::fs::remove_file(&path);
}

/// Executes one request on the host's DB, then pushes wiring changes into running sessions.
async fn handle(host: &Arc<Host>, req: Request) -> Response {
    let home = host.home.clone();
    let refresh = needs_refresh(&req);
    let label = format!("{} {}", req.resource, req.verb);
    let r = host
        .db
        .call(move |c| Ok(execute(c, &home, &req)))
        .await
        .unwrap_or_else(|e| Err(super::CtlError::internal(format!("internal error: {e}"))));
    match &r {
        Ok(_) => {
            tracing::info!(request = %label, "ctl request done");
            if refresh {
                if let Err(e) = host.refresh_projections().await {
                    tracing::warn!(error = %e, "projection refresh after ctl change failed");
                }
            }
        }
        Err(e) => tracing::debug!(request = %label, error = %e, "ctl request refused"),
    }
    Response::from_result(r)
}

/// Removes a stale socket file, binds, and restricts the socket to the owner.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Accepts connections forever, answering each request line with `exec`.
pub async fn serve_listener<F, Fut>(listener: UnixListener, exec: F)
where
    F: Fn(Request) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send,
{
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "control socket accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let exec = exec.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_conn(stream, exec).await {
                tracing::debug!(error = %e, "control client ended");
            }
        });
    }
}

async fn serve_conn<F, Fut>(stream: UnixStream, exec: F) -> std::io::Result<()>
where
    F: Fn(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut buf = Vec::new();
    loop {
        let line = read_line_capped(&mut rd, &mut buf).await?;
        let resp = match line {
            Line::Eof => return Ok(()),
            Line::TooLong => {
                let r = Response::error(format!("request too large (over {MAX_REQUEST} bytes)"));
                write(&mut wr, &r).await?;
                return Ok(());
            }
            Line::Data if buf.iter().all(u8::is_ascii_whitespace) => continue,
            Line::Data => match serde_json::from_slice::<Request>(&buf) {
                Ok(req) => exec(req).await,
                Err(e) => Response::error(format!("bad request: {e}")),
            },
        };
        write(&mut wr, &resp).await?;
    }
}

async fn write(wr: &mut tokio::net::unix::OwnedWriteHalf, r: &Response) -> std::io::Result<()> {
    let mut s = serde_json::to_string(r).unwrap_or_else(|_| {
        r#"{"ok":false,"error":"internal error: reply not serialisable"}"#.to_string()
    });
    s.push('\n');
    wr.write_all(s.as_bytes()).await
}

enum Line {
    Data,
    Eof,
    TooLong,
}

/// Reads one line (without its newline) into `buf`, refusing lines over [`MAX_REQUEST`].
async fn read_line_capped<R: AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<Line> {
    buf.clear();
    loop {
        let avail = r.fill_buf().await?;
        if avail.is_empty() {
            return Ok(if buf.is_empty() {
                Line::Eof
            } else {
                Line::Data
            });
        }
        if let Some(i) = avail.iter().position(|&b| b == b'\n') {
            let too_long = buf.len() + i > MAX_REQUEST;
            if !too_long {
                buf.extend_from_slice(&avail[..i]);
            }
            r.consume(i + 1);
            return Ok(if too_long { Line::TooLong } else { Line::Data });
        }
        let n = avail.len();
        if buf.len() + n > MAX_REQUEST {
            r.consume(n);
            return Ok(Line::TooLong);
        }
        buf.extend_from_slice(avail);
        r.consume(n);
    }
}
