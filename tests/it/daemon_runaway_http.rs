//! HTTP work that cannot starve the node: a `/trace` flood and the daemon's syncs.

use crate::common::{TestEnv, publish_batch};
use crate::daemon_support::{Daemon, http_get, parse_prometheus, poll_until};
use std::io::Write;
use std::net::TcpStream;

/// Requests left in flight at once (more than the server handles at a time).
const IN_FLIGHT: usize = 64;

#[test]
fn a_trace_flood_does_not_hold_up_a_sync() {
    let env = TestEnv::with_remote();
    let n1 = env.node("n1");
    // Enough log for every trace to be real work.
    publish_batch(&n1, 20_000, "flood");
    let id = crate::dispatch_support::events(&n1).last().unwrap()["event_id"]
        .as_str()
        .unwrap()
        .to_string();
    let d = Daemon::start(&n1, &["--interval", "1s"]);
    let syncs = |d: &Daemon| {
        parse_prometheus(&d.get("/metrics"))
            .unwrap()
            .value("gitmesh_sync_runs_total", &[("result", "ok")])
            .unwrap_or(0.0)
    };
    let (code, body) = http_get(&d.addr, &format!("/trace/{id}")).unwrap();
    assert_eq!(code, 200, "{body}");
    // Fire-and-forget requests: sent, never read, left open.
    let mut open = Vec::with_capacity(IN_FLIGHT);
    for _ in 0..IN_FLIGHT {
        let mut s = TcpStream::connect(&d.addr).unwrap();
        write!(s, "GET /trace/{id} HTTP/1.1\r\nHost: {}\r\n\r\n", d.addr).unwrap();
        open.push(s);
    }
    let before = syncs(&d);
    poll_until("a sync completes while the traces are in flight", || {
        (syncs(&d) > before).then_some(())
    });
    // The clients go away; their work is cancelled and the daemon still answers.
    drop(open);
    let (code, _) = http_get(&d.addr, "/status").unwrap();
    assert_eq!(code, 200);
    let after = syncs(&d);
    poll_until("syncs go on after the flood", || {
        (syncs(&d) > after).then_some(())
    });
}
