use super::*;

fn id(dev: u64, ino: u64, born_ns: u64) -> RootIdentity {
    RootIdentity { dev, ino, born_ns }
}

#[test]
fn a_reused_inode_with_another_birth_time_is_another_root() {
    assert!(id(1, 7, 100).same_root(&id(1, 7, 100)));
    assert!(
        !id(1, 7, 100).same_root(&id(1, 7, 200)),
        "restored into a reused inode"
    );
    assert!(!id(1, 7, 100).same_root(&id(1, 8, 100)));
    assert!(!id(1, 7, 100).same_root(&id(2, 7, 100)));
}

#[test]
fn an_unknown_birth_time_falls_back_to_device_and_inode() {
    assert!(
        id(1, 7, 0).same_root(&id(1, 7, 100)),
        "recorded by an older version"
    );
    assert!(
        id(1, 7, 100).same_root(&id(1, 7, 0)),
        "no birth time on this file system"
    );
    assert!(!id(1, 7, 0).same_root(&id(1, 8, 100)));
}

#[test]
fn the_birth_time_survives_the_json_file_and_old_files_still_read() {
    let old: RootIdentity = serde_json::from_str(r#"{"dev":1,"ino":7}"#).unwrap();
    assert_eq!(old, id(1, 7, 0));
    let text = serde_json::to_string(&id(1, 7, 5)).unwrap();
    assert_eq!(
        serde_json::from_str::<RootIdentity>(&text).unwrap(),
        id(1, 7, 5)
    );
}
