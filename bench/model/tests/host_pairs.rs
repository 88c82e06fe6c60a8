//! `[[hosts.pair]]`: several real host pairs in one scenario, each a
//! stretch of the matrix whose every run names its pair.

use std::path::Path;

use migbench_model::{Scenario, ScenarioError};

fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::parse(Path::new("scenarios/pairs.toml"), text)
}

fn invalid(text: &str) -> (String, String) {
    match parse(text).unwrap_err() {
        ScenarioError::Invalid { field, message, .. } => (field, message),
        e => panic!("unexpected {e}"),
    }
}

const PAIRS: &str = r#"
repetitions = 2
[link]
rate = ["1gbit", "10gbit"]
[hosts]
probe = "icmp"
[[hosts.pair]]
name = "rack-a"
src = "qemu+ssh://root@hv-a1/system"
dst = "qemu+ssh://root@hv-a2/system"
migration_address = "10.0.0.2"
return_address = "10.0.0.1"
domain = "web-1"
guest_address = "10.0.1.5"
[[hosts.pair]]
name = "rack-b"
src = "qemu+ssh://root@hv-b1/system"
dst = "qemu+ssh://root@hv-b2/system"
migration_address = "10.0.2.2"
return_address = "10.0.2.1"
domain = "web-2"
guest_address = "10.0.3.5"
"#;

#[test]
fn each_pair_is_an_outer_stretch_of_the_matrix_and_every_run_names_it() {
    let sc = parse(PAIRS).unwrap();
    let runs = migbench_model::expand(&sc);
    assert_eq!(runs.len(), 2 * 2 * 2);
    let pairs: Vec<&str> = runs.iter().map(|r| r.pair.as_str()).collect();
    assert_eq!(
        pairs,
        ["rack-a"; 4]
            .iter()
            .chain(&["rack-b"; 4])
            .copied()
            .collect::<Vec<_>>()
    );
    // The same combinations on each pair, in the same order.
    let combos = |name: &str| -> Vec<String> {
        runs.iter()
            .filter(|r| r.pair == name)
            .map(|r| r.label().replacen(&format!("pair={name} "), "", 1))
            .collect()
    };
    assert_eq!(combos("rack-a"), combos("rack-b"));
    assert!(
        runs[4].label().starts_with("libvirt pair=rack-b ram="),
        "{}",
        runs[4].label()
    );
    let size = migbench_model::matrix::size(&sc);
    assert_eq!(size.runs, Some(8));
    assert_eq!(size.factors[0], ("hosts.pair".to_string(), 2));
    let vary = migbench_model::matrix::varying(&runs);
    assert_eq!(vary, ["pair", "link_rate"]);
    // Each pair as a one-pair spec, the probe shared.
    let h = sc.hosts.as_ref().unwrap();
    let each = h.each_pair();
    assert_eq!(each.len(), 2);
    assert_eq!(each[1].0, "rack-b");
    assert_eq!(each[1].1.src, "qemu+ssh://root@hv-b1/system");
    assert_eq!(each[1].1.domain, "web-2");
    assert_eq!(each[1].1.probe, h.probe);
    assert!(each[1].1.pairs.is_empty());
    // Records written before pairs existed read as the one pair, "".
    let old: migbench_model::RunParams =
        serde_json::from_str(r#"{"index":3,"ram":"512MiB"}"#).unwrap();
    assert_eq!(old.pair, "");
}

#[test]
fn provisioned_guests_on_pairs_are_named_after_their_pair() {
    let own = PAIRS
        .replace("domain = \"web-1\"\n", "")
        .replace("domain = \"web-2\"\n", "domain = \"mine\"\n")
        .replace(
            "probe = \"icmp\"\n",
            "[hosts.provision]\nbridge = \"br0\"\n",
        )
        + "[guest]\nram = \"128MiB\"\n";
    let sc = parse(&own).unwrap();
    let h = sc.hosts.as_ref().unwrap();
    assert_eq!(h.pairs[0].domain, "migbench-guest-rack-a");
    assert_eq!(h.pairs[1].domain, "mine");
    assert_eq!(h.domain, "", "no top-level guest beside the pairs");
    let each = h.each_pair();
    assert_eq!(each[0].1.provision, h.provision);
}

#[test]
fn pairs_refuse_what_would_make_them_ambiguous() {
    let refused = |text: &str, field: &str, needle: &str| {
        let (f, msg) = invalid(text);
        assert_eq!(f, field, "{msg}");
        assert!(msg.contains(needle), "{msg}");
    };
    // A top-level pair beside [[hosts.pair]]: which one?
    refused(
        &PAIRS.replace(
            "probe = \"icmp\"\n",
            "probe = \"icmp\"\nsrc = \"qemu:///system\"\n",
        ),
        "hosts.src",
        "move it into the pairs",
    );
    refused(
        &PAIRS.replace("name = \"rack-b\"", "name = \"rack-a\""),
        "hosts.pair",
        "pairs `rack-a` and `rack-a` have the same name",
    );
    refused(
        &PAIRS.replace("name = \"rack-b\"", "name = \"rack b\""),
        "hosts.pair",
        "name = \"rack b\": give each pair a name",
    );
    refused(
        &PAIRS.replace("10.0.3.5", "10.0.1.5"),
        "hosts.pair",
        "the same guest_address 10.0.1.5",
    );
    // Two pairs may share a host, not a guest on it.
    let shared = PAIRS.replace("hv-b1", "hv-a1");
    assert!(parse(&shared).is_ok());
    refused(
        &shared.replace("web-2", "web-1"),
        "hosts.pair",
        "the same domain \"web-1\" on a shared host",
    );
    // A pair's own checks name the pair and its field.
    refused(
        &PAIRS.replace("return_address = \"10.0.2.1\"\n", ""),
        "hosts.pair",
        "pair `rack-b`: return_address: 4 runs migrate the guest back and forth",
    );
    refused(
        &PAIRS.replace("\"qemu+ssh://root@hv-b2/system\"", "\"hv-b2\""),
        "hosts.pair",
        "pair `rack-b`: dst: `hv-b2` is not a libvirt URI",
    );
    let (f, msg) = invalid(&PAIRS.replace("guest_address = \"10.0.3.5\"\n", ""));
    assert_eq!(f, "hosts.pair", "{msg}");
    assert!(msg.contains("guest_address"), "{msg}");
    // The shared [hosts.provision] is named as itself, not as a pair.
    let own = PAIRS.replace(
        "probe = \"icmp\"\n",
        "[hosts.provision]\nbridge = \"br0\"\nprefix = 40\n",
    ) + "[guest]\nram = \"128MiB\"\n";
    refused(&own, "hosts.provision.prefix", "not an IPv4 prefix length");
    // Two pairs without a domain: which guest, not "the same domain".
    refused(
        &shared
            .replace("domain = \"web-1\"\n", "")
            .replace("domain = \"web-2\"\n", ""),
        "hosts.pair",
        "pair `rack-a`: domain: name the running guest",
    );
    // Neither a pair nor pairs.
    refused(
        "[link]\nrate = \"1gbit\"\n[hosts]\nprobe = \"icmp\"\n",
        "hosts.src",
        "name one host pair in [hosts], or several as [[hosts.pair]]",
    );
}
