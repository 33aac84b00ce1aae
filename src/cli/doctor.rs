//! `gitmesh doctor`: what this node needs, checked, with a fix for each failure.

use super::Output;
use gitmesh::Error;
use gitmesh::ops::doctor::doctor;
use std::fmt::Write as _;
use std::path::Path;

pub fn run(root: &Path) -> Result<Output, Error> {
    let report = doctor(root);
    let mut h = String::new();
    for c in &report.checks {
        let mark = if c.ok { "ok  " } else { "FAIL" };
        let _ = writeln!(h, "{mark} {:<11} {}", c.name, c.detail);
        if let Some(fix) = &c.fix {
            let _ = writeln!(h, "     fix: {fix}");
        }
    }
    let failed = report.checks.iter().filter(|c| !c.ok).count();
    if failed == 0 {
        h.push_str("all checks passed\n");
    } else {
        let _ = writeln!(h, "{failed} check(s) failed");
    }
    let mut out = Output::new(&report, h);
    out.code = if report.ok { 0 } else { 1 };
    Ok(out)
}
