use std::collections::BTreeMap;

use chrono::TimeZone;

use super::*;

fn attributes(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned))).collect()
}

/// Runs group `service:db` (known), not `service:web` (known); `service:new` moves there with the plan.
fn runs_group(g: &str) -> Option<bool> {
    match g {
        "service:db" => Some(true),
        "service:web" => Some(false),
        _ => None,
    }
}

fn facts(attrs: &BTreeMap<String, Option<String>>) -> Facts<'_> {
    Facts {
        ec2_instance_id: "i-0abc",
        agent_connected: true,
        attributes: attrs,
        agent_version: Some("1.14.5"),
        registered_at: Utc.with_ymd_and_hms(2018, 6, 18, 22, 28, 28).single(),
        running_tasks: (2, 2),
        runs_group: &runs_group,
    }
}

fn eval(expr: &str, attrs: &BTreeMap<String, Option<String>>) -> bool {
    parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}")).matches(&facts(attrs))
}

fn m5_in_a() -> BTreeMap<String, Option<String>> {
    attributes(&[
        ("ecs.instance-type", Some("m5.large")),
        ("ecs.availability-zone", Some("us-east-1a")),
        ("ecs.os-type", Some("linux")),
        ("ecs.capability.task-eni", None),
        ("stack", Some("prod")),
    ])
}

#[test]
fn the_documented_examples() {
    let a = m5_in_a();
    assert!(eval("attribute:ecs.instance-type == m5.large", &a));
    assert!(!eval("attribute:ecs.instance-type == t2.small", &a));
    assert!(eval("attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", &a));
    assert!(!eval("attribute:ecs.availability-zone in [us-east-1c]", &a));
    assert!(eval(
        "attribute:ecs.instance-type =~ m5.* and attribute:ecs.availability-zone != us-east-1d",
        &a
    ));
    assert!(!eval(
        "attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d",
        &a
    ));
    assert!(eval("ec2InstanceId in ['i-0abc', 'i-wxyx7890']", &a));
    assert!(eval("agentConnected == true", &a));
}

#[test]
fn operators_in_words_and_symbols() {
    let a = m5_in_a();
    for (expr, expected) in [
        ("attribute:stack equals prod", true),
        ("attribute:stack not_equals prod", false),
        ("attribute:stack !in [prod, test]", false),
        ("attribute:stack not_in [dev]", true),
        ("attribute:stack exists", true),
        ("attribute:team !exists", true),
        ("attribute:team not_exists", true),
        ("attribute:ecs.capability.task-eni exists", true),
        ("attribute:ecs.instance-type matches m5\\..*", true),
        ("attribute:ecs.instance-type !~ m5.*", false),
        ("attribute:ecs.instance-type not_matches c5.*", true),
        ("attribute:ecs.os-type==linux&&attribute:stack==prod", true),
        ("attribute:stack == dev || attribute:stack == prod", true),
    ] {
        assert_eq!(eval(expr, &a), expected, "{expr}");
    }
}

#[test]
fn a_comparison_with_a_missing_attribute_is_unknown_and_never_a_match() {
    let a = m5_in_a();
    for expr in [
        "attribute:team == x",
        "attribute:team != x",
        "attribute:team in [x]",
        "attribute:team !in [x]",
        "attribute:team =~ .*",
        "attribute:team !~ x",
        "not(attribute:team == x)",
        "attribute:team != x and attribute:stack == prod",
    ] {
        assert!(!eval(expr, &a), "{expr}");
    }
    // Unknown or true is true; unknown and false is false, so its negation is a match.
    assert!(eval("attribute:team == x or attribute:stack == prod", &a));
    assert!(eval("not(attribute:team == x and attribute:stack == dev)", &a));
    // Whether it exists is always known.
    assert!(eval("attribute:team !exists", &a));
    // An attribute without a value exists, but equals no value.
    assert!(!eval("attribute:ecs.capability.task-eni == x", &a));
}

#[test]
fn precedence_and_parentheses() {
    let a = m5_in_a();
    // `and` binds tighter than `or`.
    assert!(eval("attribute:stack == prod or attribute:stack == x and attribute:team exists", &a));
    assert!(!eval("(attribute:stack == prod or attribute:stack == x) and attribute:team exists", &a));
    assert!(eval("not(attribute:stack == dev)", &a));
    assert!(eval("!(attribute:stack == dev) and not attribute:team exists", &a));
    assert!(eval("(attribute:ecs.instance-type =~ (m5|c5).large)", &a));
    assert!(eval("(attribute:ecs.instance-type =~ m5.*) and attribute:stack == prod", &a));
}

#[test]
fn whole_value_matches_only() {
    let a = m5_in_a();
    assert!(!eval("attribute:ecs.instance-type =~ m5", &a));
    assert!(eval("attribute:ecs.instance-type =~ m5.large", &a));
}

#[test]
fn quoted_patterns_are_what_the_quotes_hold() {
    let a = m5_in_a();
    assert!(eval("attribute:ecs.instance-type =~ 'm5.*'", &a));
    assert!(eval("attribute:ecs.instance-type =~ \"m5\\.large\"", &a));
    assert!(!eval("attribute:ecs.instance-type !~ 'm5.*'", &a));
    assert!(eval("attribute:ecs.instance-type !~ 'g4dn.*'", &a));
    assert!(eval("(attribute:ecs.instance-type =~ 'm5 .*|m5.large')", &a), "a blank inside quotes");
}

#[test]
fn task_groups_counts_versions_and_registration_times() {
    let a = m5_in_a();
    for (expr, expected) in [
        ("task:group == service:db", true),
        ("not(task:group == service:db)", false),
        ("task:group != service:web", true),
        ("task:group in [service:web, service:db]", true),
        ("task:group !in [service:web]", true),
        // Where a task of it arrives only with the plan: unknown either way.
        ("task:group == service:new", false),
        ("task:group != service:new", false),
        ("runningTasksCount == 2", true),
        ("runningTasksCount < 3 and runningTasksCount greater_than_equal 2", true),
        ("runningTasksCount != 2", false),
        ("agentVersion >= 1.14.5", true),
        ("agentVersion > 1.9", true),
        ("agentVersion < 1.14.10", true),
        ("agentVersion == 1.14.5.0", true),
        ("registeredAt < 2018-06-19", true),
        ("registeredAt >= 2018-06-18T22:28:28Z", true),
        ("registeredAt > 2018-06-18T22:28:28+00:00", false),
        ("registeredAt == 2018-06-18T22:28:28", true),
    ] {
        assert_eq!(eval(expr, &a), expected, "{expr}");
    }
    let e = parse("task:group == service:db or not(task:group in [family:x, service:y])")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(e.task_groups(), ["service:db", "family:x", "service:y"]);
}

#[test]
fn a_count_that_changes_as_tasks_arrive_is_unknown() {
    let a = m5_in_a();
    let mut f = facts(&a);
    f.running_tasks = (2, 4);
    let e = |text: &str| parse(text).unwrap_or_else(|e| panic!("{e}")).matches(&f);
    assert!(e("runningTasksCount < 5"), "true before and after the plan's tasks arrive");
    assert!(!e("runningTasksCount < 3"), "true only before");
    assert!(!e("not(runningTasksCount < 3)"));
}

#[test]
fn what_cannot_be_evaluated_is_refused_with_the_reason() {
    for (expr, why) in [
        ("task:group =~ service:.*", "operator \"matches\" is not supported for TaskGroup"),
        ("task:group exists", "operator \"exists\" is not supported for TaskGroup"),
        ("runningTasksCount in [1, 2]", "operator \"in\" is not supported for RunningTasksCount"),
        ("attribute:stack > 1", "operator \"greater_than\" is not supported"),
        ("registeredAt < 2018", "documented date formats"),
        ("agentVersion >= latest", "not a version"),
        ("runningTasksCount == many", "not a count"),
        ("instanceType == m5", "subject \"instanceType\" is not documented"),
        ("attribute:ecs.instance-type =~ 'm5.*", "unterminated quote"),
        ("attribute:ecs.instance-type =~ (?=m5).*", "pattern"),
        ("attribute:stack ==", "expected a value"),
        ("attribute:stack in [a, b", "expected ',' or ']'"),
        ("(attribute:stack == a", "expected ')'"),
        ("attribute:stack == a b", "unexpected"),
        ("attribute:stack like a", "operator \"like\""),
        ("attribute:stack == 'open", "unterminated quote"),
        ("", "expected a subject"),
    ] {
        let err = parse(expr).err().unwrap_or_else(|| panic!("{expr} parsed"));
        assert!(err.contains(why), "{expr}: {err}");
    }
}
