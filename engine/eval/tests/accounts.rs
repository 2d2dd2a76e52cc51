//! Users' supplementary groups: listed in the graph (and so in the user's
//! hash), each name checked, each once.

use std::collections::BTreeMap;

use archy_eval::{Limits, MemSources, evaluate};
use archy_graph::resource::UserSpec;
use archy_graph::{Graph, Kind, Problem, Resource, ResourceKey};

fn eval(node: &str) -> Result<Graph, Vec<Problem>> {
    let src = MemSources::default().with("node.rhai", node);
    evaluate(src, "node.rhai", BTreeMap::new(), &Limits::default())
        .map(|ev| ev.graph)
        .map_err(|f| f.problems)
}

fn user<'g>(g: &'g Graph, name: &str) -> (&'g UserSpec, archy_graph::Digest) {
    let key = ResourceKey {
        kind: Kind::User,
        id: name.into(),
    };
    let node = g.get(&key).expect("user");
    match &node.resource {
        Resource::User(u) => (u, node.hash),
        other => panic!("not a user: {other:?}"),
    }
}

fn groups(u: &UserSpec) -> Vec<&str> {
    u.groups.iter().map(|g| g.as_str()).collect()
}

#[test]
fn groups_are_listed_in_order_and_hashed() {
    let g = eval(
        r#"[
            group("bitcoin", #{ gid: 2000 }),
            user("lnd", #{ group: "lnd", groups: ["bitcoin", "debian-tor"] }),
            user("plain", #{}),
        ]"#,
    )
    .expect("evaluates");
    let (lnd, with_two) = user(&g, "lnd");
    assert_eq!(groups(lnd), ["bitcoin", "debian-tor"]);
    assert!(user(&g, "plain").0.groups.is_empty());

    let json = archy_graph::json::graph_json(&g).to_string();
    assert!(
        json.contains(r#""groups":["bitcoin","debian-tor"]"#),
        "{json}"
    );

    let g = eval(r#"[ user("lnd", #{ group: "lnd", groups: ["bitcoin"] }) ]"#).expect("evaluates");
    assert_ne!(
        user(&g, "lnd").1,
        with_two,
        "the groups are part of the hash"
    );
}

#[test]
fn bad_groups_are_refused_naming_the_option() {
    let cases = [
        (r#"groups: ["bitcoin", "bitcoin"]"#, "names bitcoin twice"),
        (r#"groups: ["no way"]"#, "option `groups`"),
        (r#"groups: [""]"#, "empty string"),
        (r#"groups: "bitcoin""#, "must be an array of strings"),
        (r#"groups: [7]"#, "not a string"),
    ];
    for (options, want) in cases {
        let node = format!("[ user(\"lnd\", #{{ {options} }}) ]");
        let problems = eval(&node).expect_err("must fail");
        let text: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        let text = text.join("\n");
        assert!(text.contains("user \"lnd\""), "{options}: {text}");
        assert!(text.contains("`groups`"), "{options}: {text}");
        assert!(text.contains(want), "{options}: {text}");
    }
}
