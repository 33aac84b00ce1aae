//! Each text is what git 2.47 (or the ssh client it runs) printed against a real
//! failing remote, unless its comment names the server that prints it.

use super::*;

fn kind(stderr: &str) -> &'static str {
    classify(stderr).kind()
}

#[test]
fn a_refusing_hook_is_a_rejection() {
    let pre_receive = "remote: push refused: token lacks write access        \n\
To ../hooked.git\n\
 ! [remote rejected] main -> main (pre-receive hook declined)\n\
error: failed to push some refs to '../hooked.git'";
    assert_eq!(kind(pre_receive), "rejected");
    let update = "remote: update hook says no        \n\
remote: error: hook declined to update refs/heads/main        \n\
To ../upd.git\n\
 ! [remote rejected] main -> main (hook declined)\n\
error: failed to push some refs to '../upd.git'";
    assert_eq!(kind(update), "rejected");
    // GitHub's branch protection.
    let protected = "remote: error: GH006: Protected branch update failed for refs/heads/main.\n\
 ! [remote rejected] main -> main (protected branch hook declined)";
    assert_eq!(kind(protected), "rejected");
}

#[test]
fn http_status_codes_are_told_apart() {
    assert_eq!(
        kind("fatal: Authentication failed for 'http://127.0.0.1:19419/401/x.git/'"),
        "auth"
    );
    assert_eq!(
        kind(
            "fatal: unable to access 'http://127.0.0.1:19419/403/x.git/': The requested URL returned error: 403"
        ),
        "rejected"
    );
    // GitHub, a token without write access.
    assert_eq!(
        kind(
            "remote: Permission to o/r.git denied to bot.\n\
fatal: unable to access 'https://github.com/o/r.git/': The requested URL returned error: 403"
        ),
        "rejected"
    );
    assert_eq!(
        kind("fatal: repository 'http://127.0.0.1:19419/404/x.git/' not found"),
        "not_found"
    );
    // A server error is worth retrying.
    assert_eq!(
        kind(
            "fatal: unable to access 'http://127.0.0.1:19419/500/x.git/': The requested URL returned error: 500"
        ),
        "offline"
    );
}

#[test]
fn ssh_refusals_are_auth_failures_not_network_ones() {
    // The ssh client prints its line, then git its generic one.
    let publickey = "git@127.0.0.1: Permission denied (publickey).\n\
fatal: Could not read from remote repository.\n\n\
Please make sure you have the correct access rights\nand the repository exists.";
    assert_eq!(kind(publickey), "auth");
    let host_key = "Host key verification failed.\n\
fatal: Could not read from remote repository.\n\n\
Please make sure you have the correct access rights\nand the repository exists.";
    assert_eq!(kind(host_key), "auth");
}

#[test]
fn a_missing_repository_is_not_found() {
    // git daemon, asked for a repository it does not have.
    assert_eq!(
        kind("fatal: remote error: access denied or repository not exported: /missing.git"),
        "not_found"
    );
    // GitHub over ssh.
    assert_eq!(
        kind("ERROR: Repository not found.\nfatal: Could not read from remote repository."),
        "not_found"
    );
}

#[test]
fn a_remote_out_of_reach_is_unreachable() {
    for text in [
        "fatal: unable to connect to 127.0.0.1:\n127.0.0.1[0: 127.0.0.1]: errno=Connection refused",
        "fatal: unable to access 'https://nonexistent.invalid/x.git/': Could not resolve host: nonexistent.invalid",
        "fatal: unable to access 'http://127.0.0.1:9/x.git/': Failed to connect to 127.0.0.1 port 9 after 0 ms: Couldn't connect to server",
        // A local path that is absent (a share not mounted, a remote not created yet).
        "fatal: '/tmp/fk/nope.git' does not appear to be a git repository\n\
fatal: Could not read from remote repository.",
        // git daemon at its connection limit.
        "fatal: read error: Connection reset by peer",
    ] {
        assert_eq!(kind(text), "offline", "{text}");
    }
}

#[test]
fn a_lost_race_is_neither_a_refusal_nor_a_failure_of_the_remote() {
    let fetch_first = "To ../mesh.git\n ! [rejected]        main -> main (fetch first)\n\
error: failed to push some refs to '../mesh.git'";
    assert!(lost_race(fetch_first));
    assert_eq!(classify(fetch_first), RemoteFailure::Other);
    let remote_lock = " ! [remote rejected] main -> main (failed to update ref)";
    assert!(lost_race(remote_lock));
    assert_eq!(classify(remote_lock), RemoteFailure::Other);
    assert!(!lost_race(
        " ! [remote rejected] main -> main (pre-receive hook declined)"
    ));
}

#[test]
fn anything_else_is_a_plain_git_failure() {
    assert_eq!(
        kind("fatal: couldn't find remote ref refs/heads/main"),
        "git"
    );
    assert_eq!(kind(""), "git");
}
