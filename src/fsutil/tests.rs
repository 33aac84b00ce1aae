use super::*;

#[test]
fn json_lines_are_appended_one_per_value_creating_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("audit.ndjson");
    append_json_line(&path, &serde_json::json!({"n": 1})).unwrap();
    append_json_line(&path, &serde_json::json!({"n": 2, "s": "a\nb"})).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text, "{\"n\":1}\n{\"n\":2,\"s\":\"a\\nb\"}\n");
}

#[test]
fn a_json_line_is_pushed_after_what_the_buffer_holds() {
    let mut buf = b"x\n".to_vec();
    push_json_line(&mut buf, &[1, 2], Path::new("f")).unwrap();
    assert_eq!(buf, b"x\n[1,2]\n");
}
