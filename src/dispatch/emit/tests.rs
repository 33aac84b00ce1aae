use super::*;
use crate::dispatch::testutil::event;
use crate::event::{IdForm, compute_id};
use serde_json::json;

#[test]
fn derived_ids_match_the_contract_form_and_depend_only_on_the_cause() {
    let cause = event("scheduling", "task.enqueued", json!({"task_id": "t"}));
    let mut p = serde_json::Map::new();
    p.insert("z".into(), json!(1.0));
    p.insert("a".into(), json!({"y": [1, "é"], "b": null}));
    let f = FollowUp::new("routing", "routing", "route.selected", p);
    let a = derive("n2", &cause, f.clone()).unwrap();
    assert_eq!(
        a.event_id,
        compute_id(&a, IdForm::Derived { handler: "routing" }).unwrap()
    );
    assert_eq!(a.correlation_id, cause.event_id);
    assert_eq!(a.causation_id, cause.event_id);
    assert_eq!(a.source, SOURCE);
    let mut b_env = a.clone();
    b_env.schema_version = Some(2);
    assert_eq!(
        derived_id(&b_env).unwrap(),
        compute_id(&b_env, IdForm::Derived { handler: "routing" }).unwrap()
    );
    let again = derive("n2", &cause, f).unwrap();
    assert_eq!(again.event_id, a.event_id);
}
