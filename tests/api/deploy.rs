//! The deployment artefacts name only metrics the server exports: every
//! metric in the alert rules and the Grafana dashboard is looked up in a
//! live scrape, so a rename cannot silently blind them. The rule file's
//! shape is checked here too (`promtool check rules` checks it further in
//! CI when promtool is installed).

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

use crate::helpers::TestApp;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleGroup {
    name: String,
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    alert: String,
    expr: String,
    #[serde(rename = "for")]
    pending_for: Option<String>,
    labels: std::collections::BTreeMap<String, String>,
    annotations: std::collections::BTreeMap<String, String>,
}

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// Every `emporium_…` metric an expression names, histogram series mapped
/// to their family.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("emporium_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        names.insert(family.to_owned());
        rest = &tail[end..];
    }
    names
}

/// The metric families a fresh instance exports.
async fn exported_families() -> BTreeSet<String> {
    let app = TestApp::spawn().await;
    // One request so the HTTP families exist.
    assert_eq!(app.get("/healthz", None).await.status(), 200);
    let text = app
        .get("/metrics", None)
        .await
        .text()
        .await
        .expect("exposition");
    openmetrics_parser::prometheus::parse_prometheus(&text)
        .expect("valid exposition")
        .families
        .into_keys()
        .collect()
}

#[actix_rt::test]
async fn alert_rules_and_dashboard_name_exported_metrics() {
    let rules: RuleFile =
        serde_yaml_ng::from_str(&read("deploy/prometheus/alerts.yml")).expect("rule file shape");
    let mut named = BTreeSet::new();
    for group in &rules.groups {
        assert!(!group.rules.is_empty(), "group {} is empty", group.name);
        for rule in &group.rules {
            assert!(
                ["page", "ticket"].contains(&rule.labels["severity"].as_str()),
                "{}: severity",
                rule.alert
            );
            assert!(rule.annotations.contains_key("summary"), "{}", rule.alert);
            if let Some(pending) = &rule.pending_for {
                assert!(
                    pending.ends_with('m') || pending.ends_with('s'),
                    "{pending}"
                );
            }
            named.extend(metric_names(&rule.expr));
        }
    }

    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/emporium.json")).expect("dashboard is JSON");
    assert_eq!(dashboard["uid"], "emporium-overview");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    for panel in panels {
        assert!(
            ids.insert(panel["id"].as_u64().expect("panel id")),
            "duplicate id"
        );
        for target in panel["targets"].as_array().into_iter().flatten() {
            named.extend(metric_names(target["expr"].as_str().expect("expr")));
        }
    }

    let exported = exported_families().await;
    let unknown: Vec<_> = named.difference(&exported).collect();
    assert!(unknown.is_empty(), "not exported: {unknown:?}");
    // And the other way: every family is on the dashboard.
    let undrawn: Vec<_> = exported.difference(&named).collect();
    assert!(
        undrawn.is_empty(),
        "exported but on no panel or rule: {undrawn:?}"
    );
}
