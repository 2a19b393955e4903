//! A TCP proxy the test controls: it forwards connections to a target and
//! can cut every open one at once (both ends see the connection drop), as a
//! network failure would, without either peer closing it; or pause them (a
//! partition: the connections stay open, nothing gets through either way)
//! and resume.

use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Proxy {
    pub addr: SocketAddr,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    paused: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

/// Wait while the proxy is paused.
async fn open(paused: &mut watch::Receiver<bool>) {
    let _ = paused.wait_for(|p| !p).await;
}

/// Copy `from` to `to`, holding bytes back while paused.
async fn pump(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin, mut paused: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        open(&mut paused).await;
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        open(&mut paused).await;
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    // A partition holds the FIN back too: a peer that gives up on a silent
    // connection must not look, to the other side, as if it had closed.
    open(&mut paused).await;
    let _ = to.shutdown().await;
}

impl Proxy {
    /// Listen on 127.0.0.1:0 and forward to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (paused, watching) = watch::channel(false);
        let l = links.clone();
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let watching = watching.clone();
                let link = tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else { return };
                    let ((ri, wi), (ro, wo)) = (inbound.into_split(), outbound.into_split());
                    tokio::join!(pump(ri, wo, watching.clone()), pump(ro, wi, watching));
                });
                l.lock().push(link);
            }
        });
        Proxy { addr, links, paused, accept }
    }

    /// Drop every connection going through the proxy now.
    pub fn cut(&self) {
        for link in self.links.lock().drain(..) {
            link.abort();
        }
    }

    /// Stop forwarding, both ways, keeping the connections open.
    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    /// Forward again what was held back, and what follows.
    pub fn resume(&self) {
        self.paused.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}
