use super::*;

fn hosts(bound: &str) -> AllowedHosts {
    AllowedHosts::new(bound.parse().unwrap())
}

#[test]
fn loopback_names_on_the_bound_port_are_answered_and_nothing_else() {
    let h = hosts("127.0.0.1:9464");
    let answered = [
        "127.0.0.1:9464",
        "127.0.0.1",
        "localhost:9464",
        "LOCALHOST",
        "[::1]:9464",
        "[::1]",
    ];
    let refused = [
        "evil.example",
        "evil.example:9464",
        "localhost.evil.example:9464",
        "127.0.0.1.nip.io:9464",
        "127.0.0.1:80",
        "localhost:9465",
        "user@127.0.0.1:9464",
        "10.0.0.5:9464",
        "",
        "127.0.0.1:port",
    ];
    for host in answered.iter().chain(&refused) {
        assert_eq!(h.allows(host), answered.contains(host), "{host}");
    }
}

#[test]
fn the_bound_address_is_answered_and_a_wildcard_bind_takes_any_ip_literal() {
    let h = hosts("10.0.0.5:9464");
    assert!(h.allows("10.0.0.5:9464"));
    assert!(!h.allows("10.0.0.6:9464"));
    let any = hosts("0.0.0.0:9464");
    assert!(any.allows("192.168.1.20:9464"));
    assert!(any.allows("[fe80::1]:9464"));
    assert!(!any.allows("gitmesh.example:9464"));
}
