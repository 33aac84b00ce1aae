use super::*;

#[test]
fn non_loopback_listen_needs_the_explicit_flag() {
    let mut o = DaemonOptions {
        listen: Some("0.0.0.0:8080".parse().unwrap()),
        ..Default::default()
    };
    let err = o.check().unwrap_err().to_string();
    assert!(err.contains("--listen-any"), "{err}");
    o.listen_any = true;
    assert!(o.check().is_ok());
    o.listen = Some("[::1]:8080".parse().unwrap());
    o.listen_any = false;
    assert!(o.check().is_ok());
}
