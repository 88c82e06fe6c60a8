//! Scenario parsing: lists and scalars, located errors, variants.

use std::path::Path;

use migbench_model::scenario::ScenarioError;
use migbench_model::settings::Postcopy;
use migbench_model::units::{ByteRate, Size};
use migbench_model::Scenario;

const GOOD: &str = r#"
repetitions = 2
[guest]
ram = "256MiB"
[workload]
dirty_rate = ["0", "20MB/s"]
[link]
rate = ["100mbit", "1gbit"]
"#;

fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::parse(Path::new("scenarios/t.toml"), text)
}

#[test]
fn lists_and_scalars_both_parse() {
    let sc = parse(GOOD).unwrap();
    assert_eq!(sc.name, "t");
    assert_eq!(sc.link.rate.0.len(), 2);
    assert_eq!(sc.guest.ram.0, vec![Size(256 << 20)]);
    assert_eq!(sc.workload.dirty_rate.0[1], ByteRate(20_000_000));
}

/// `text` is refused at `line` naming `field`, with `needle` in the message.
fn refused_at(text: &str, line: usize, field: &str, needle: &str) {
    let (l, f, msg) = invalid(text);
    assert_eq!((l, f.as_str()), (line, field));
    assert!(msg.contains(needle), "{msg}");
}

fn invalid(text: &str) -> (usize, String, String) {
    match parse(text).unwrap_err() {
        ScenarioError::Invalid {
            line,
            field,
            message,
            ..
        } => (line, field, message),
        e => panic!("unexpected {e}"),
    }
}

#[test]
fn unknown_field_names_line_and_field() {
    let (line, field, msg) =
        invalid("[guest]\nram = \"256MiB\"\nrma = 3\n[link]\nrate = \"1gbit\"\n");
    assert_eq!(line, 3);
    assert_eq!(field, "guest.rma");
    assert!(msg.contains("unknown field"), "{msg}");
}

#[test]
fn bad_unit_names_line_and_field() {
    refused_at(
        "[guest]\nram = \"256MiB\"\n[link]\nrate = \"100furlongs\"\n",
        4,
        "link.rate",
        "unknown rate unit",
    );
}

#[test]
fn negative_size_in_a_list_is_an_error() {
    refused_at(
        "[guest]\nram = [\"256MiB\", \"-1MiB\"]\n[link]\nrate = \"1gbit\"\n",
        2,
        "guest.ram",
        "negative",
    );
}

#[test]
fn impossible_values_are_located() {
    refused_at(
        "[guest]\nram = \"256MiB\"\n[link]\nrate = \"1gbit\"\n[probe]\ninterval = \"1s\"\n",
        6,
        "probe.interval",
        "0.1ms",
    );
}

#[test]
fn netem_need_is_detected() {
    assert!(!parse(GOOD).unwrap().needs_netem());
    let sc =
        parse("[guest]\nram = \"256MiB\"\n[link]\nrate = \"1gbit\"\ndelay = \"10ms\"\n").unwrap();
    assert!(sc.needs_netem());
}

#[test]
fn variants_override_migration_and_policy_keys() {
    let sc = parse(
            "[guest]\nram = \"256MiB\"\n[link]\nrate = \"100mbit\"\n[migration]\ndowntime_limit = \"300ms\"\ntimeout = \"60s\"\n[policy]\ncompletion_timeout = \"30s\"\n\n[[variant]]\nname = \"plain\"\n\n[[variant]]\nname = \"postcopy\"\nmigration.postcopy = \"after 2 passes\"\n\n[[variant]]\nname = \"steps\"\nmigration.downtime_limit = [\"1s\", \"2s\"]\npolicy.downtime_steps = 4\n",
        )
        .unwrap();
    assert_eq!(sc.variants.len(), 3);
    let v = &sc.variants[1];
    assert_eq!(v.migration.postcopy.0, vec![Postcopy::AfterPasses(2)]);
    assert_eq!(v.migration.downtime_limit, sc.migration.downtime_limit);
    assert_eq!(v.policy.completion_timeout, sc.policy.completion_timeout);
    assert_eq!(sc.variants[2].migration.downtime_limit.0.len(), 2);
    let runs = migbench_model::expand(&sc);
    assert_eq!(runs.len(), 1 + 1 + 2);
    assert_eq!(runs[3].variant, "steps");
    assert_eq!(runs[3].downtime_steps, 4);
    assert_eq!(runs[0].postcopy, Postcopy::Off);
    let varying = migbench_model::matrix::varying(&runs);
    assert_eq!(
        varying,
        ["variant", "downtime_limit", "postcopy", "downtime_steps"]
    );
}

#[test]
fn a_bad_variant_key_names_the_variant_line_and_key() {
    let (line, field, msg) = invalid(
            "[guest]\nram = \"256MiB\"\n[link]\nrate = \"100mbit\"\n[[variant]]\nname = \"pc\"\nmigration.postcopy = \"sometimes\"\n",
        );
    assert_eq!((line, field.as_str()), (7, "migration.postcopy"));
    assert!(
        msg.contains("variant `pc`") && msg.contains("after N passes"),
        "{msg}"
    );
    let (_, field, msg) = invalid(
            "[guest]\nram = \"256MiB\"\n[link]\nrate = \"100mbit\"\n[[variant]]\nname = \"x\"\nmigration.multifd = 4\n",
        );
    assert_eq!(field, "migration.multifd");
    assert!(msg.contains("unknown field"), "{msg}");
}

#[test]
fn knobs_that_cannot_work_together_are_refused() {
    let base = "[guest]\nram = \"256MiB\"\n[link]\nrate = \"100mbit\"\n";
    let cases = [
        (
            "[migration]\nmultifd_compression = \"zstd\"\n",
            "migration.multifd_compression",
            "multifd_channels",
        ),
        (
            "[migration]\nmultifd_channels = 2\nmultifd_compression = \"zlib\"\nmultifd_compression_level = 12\n",
            "migration.multifd_compression_level",
            "levels 1 – 9",
        ),
        (
            "[migration]\ntimeout = \"30s\"\n[policy]\ncompletion_timeout = \"30s\"\n",
            "policy.completion_timeout",
            "never fires",
        ),
        (
            "[migration]\npostcopy = \"allowed\"\n[storage]\nmode = \"block\"\n",
            "migration.postcopy",
            "post-copy",
        ),
    ];
    for (text, field, needle) in cases {
        let (_, f, msg) = invalid(&format!("{base}{text}"));
        assert_eq!(f, field);
        assert!(msg.contains(needle), "{msg}");
    }
}

#[test]
fn a_missing_required_field_names_its_table() {
    refused_at(
        "[guest]\nvcpus = 2\n[link]\nrate = \"1gbit\"\n",
        1,
        "guest.ram",
        "missing field `ram`",
    );
}

#[test]
fn every_dimension_is_a_run_parameter_with_a_label() {
    let sc = parse(GOOD).unwrap();
    let p = &migbench_model::expand(&sc)[0];
    let json = serde_json::to_value(p).unwrap();
    for d in migbench_model::DIMENSIONS {
        assert!(json.get(d.name).is_some(), "{} is not in RunParams", d.name);
        assert!(
            // A scenario without variants or host pairs names neither.
            ["variant", "pair"].contains(&d.name) || !(d.label)(p).is_empty(),
            "{}",
            d.name
        );
        assert!(!(d.value)(p).is_nan(), "{}", d.name);
    }
    // Records written before a field existed read with its default.
    let old: migbench_model::RunParams =
        serde_json::from_str(r#"{"index":3,"ram":"512MiB","link_rate":"100mbit"}"#).unwrap();
    assert_eq!(old.index, 3);
    assert_eq!(old.downtime_limit.to_string(), "300ms");
}

const HOSTS: &str = r#"
[link]
rate = "1gbit"
[hosts]
src = "qemu+ssh://root@hv-a/system"
dst = "qemu+ssh://root@hv-b/system"
migration_address = "10.0.0.2"
domain = "web-1"
guest_address = "10.0.1.5"
"#;

#[test]
fn real_hosts_default_to_libvirt() {
    use migbench_model::scenario::hosts::HostProbe;
    use migbench_model::settings::Backend;
    let sc = parse(HOSTS).unwrap();
    assert_eq!(sc.backend.kind.0, vec![Backend::Libvirt]);
    let h = sc.hosts.unwrap();
    assert_eq!((h.domain.as_str(), h.probe), ("web-1", HostProbe::Udp));
    // A [backend] that names only the transport keeps that default.
    let p2p = parse(&format!("[backend]\ntransport = \"p2p\"\n{HOSTS}")).unwrap();
    assert_eq!(p2p.backend.kind.0, vec![Backend::Libvirt]);
}

#[test]
fn real_hosts_refuse_what_they_cannot_do() {
    let with = |extra: &str| format!("{HOSTS}{extra}");
    // Two runs go back and forth: the way back needs the source's address.
    let two = format!("repetitions = 2\n{HOSTS}");
    let (_, field, msg) = invalid(&two);
    assert_eq!(field, "hosts.return_address");
    assert!(msg.contains("back and forth"), "{msg}");
    let (_, field, msg) = invalid(&format!("[backend]\nkind = \"qmp\"\n{HOSTS}"));
    assert_eq!(field, "backend.kind");
    assert!(
        msg.contains("backend qmp lacks the capability `real hosts`: kind = \"libvirt\""),
        "{msg}"
    );
    let (_, field, msg) = invalid(
        &with("probe = \"icmp\"\n").replace("[link]", "[workload]\ndirty_rate = \"5MB/s\"\n[link]"),
    );
    assert_eq!(field, "workload.dirty_rate");
    assert!(msg.contains("agent"), "{msg}");
    let (_, field, msg) = invalid(&HOSTS.replace("qemu+ssh://root@hv-b/system", "hv-b"));
    assert_eq!(field, "hosts.dst");
    assert!(msg.contains("not a libvirt URI"), "{msg}");
    let (_, field, _) = invalid(&HOSTS.replace("10.0.1.5", "guest.example"));
    assert_eq!(field, "hosts.guest_address");
    let (_, field, _) = invalid(&with("colour = \"red\"\n"));
    assert_eq!(field, "hosts.colour");
    // The existing domain's size is read from libvirt, not written.
    let (_, field, msg) = invalid(&format!("[guest]\nram = \"1GiB\"\n{HOSTS}"));
    assert_eq!(field, "guest");
    assert!(msg.contains("remove [guest]"), "{msg}");
}

#[test]
fn real_hosts_can_run_migbenchs_own_guest() {
    let own = HOSTS.replace("domain = \"web-1\"\n", "")
        + "[hosts.provision]\nbridge = \"br0\"\n[guest]\nram = \"512MiB\"\n";
    let sc = parse(&own).unwrap();
    let h = sc.hosts.as_ref().unwrap();
    assert_eq!(h.domain, "migbench-guest");
    let p = h.provision.as_ref().unwrap();
    assert_eq!(
        (p.pool.as_str(), p.prefix, p.gateway.as_deref()),
        ("default", 24, None)
    );
    assert_eq!(sc.guest.ram.0[0].to_string(), "512MiB");
    // One guest for the matrix, diskless, on a named bridge.
    let (_, field, _) = invalid(&own.replace("\"512MiB\"", "[\"256MiB\", \"512MiB\"]"));
    assert_eq!(field, "guest.ram");
    let (_, field, msg) = invalid(&format!("{own}[storage]\nmode = \"block\"\n"));
    assert_eq!(field, "storage.mode");
    assert!(msg.contains("diskless"), "{msg}");
    let (_, field, _) = invalid(&own.replace("bridge = \"br0\"", "bridge = \"br0\"\nprefix = 40"));
    assert_eq!(field, "hosts.provision.prefix");
    let (_, field, _) =
        invalid(&own.replace("bridge = \"br0\"", "bridge = \"br0\"\ngateway = \"gw\""));
    assert_eq!(field, "hosts.provision.gateway");
    // Neither a domain nor provision: which guest?
    let (_, field, msg) = invalid(&HOSTS.replace("domain = \"web-1\"\n", ""));
    assert_eq!(field, "hosts.domain");
    assert!(msg.contains("[hosts.provision]"), "{msg}");
}

#[test]
fn services_parse_and_bad_service_input_names_the_field() {
    let sc = parse(&format!(
        "{GOOD}[service]\nkind = [\"udp\", \"all\"]\nbuffer = [\"0s\", \"2s\"]\n"
    ))
    .unwrap();
    assert_eq!(sc.service.kind.0.len(), 2);
    assert_eq!(sc.service.buffer.len(), 2);
    let runs = migbench_model::expand(&sc);
    assert_eq!(runs.len(), 2 * 2 * 2 * 2, "kind is a dimension");
    let base = "[guest]\nram = \"256MiB\"\n[link]\nrate = \"100mbit\"\n[service]\n";
    refused_at(
        &format!("{base}kind = \"icmp+video\"\n"),
        6,
        "service.kind",
        "tcp-stream",
    );
    refused_at(
        &format!("{base}kind = \"tcp-stream\"\nstream_rate = \"80mbit\"\n"),
        7,
        "service.stream_rate",
        "the TCP stream's rate 80mbit needs a link of at least 160mbit",
    );
    // A stream nobody runs limits nothing: neither a written rate nor the
    // default (issue 24: a 1kbit link with no [service] was refused for
    // the default stream rate).
    parse(&format!("{base}stream_rate = \"80mbit\"\n")).unwrap();
    parse("[guest]\nram = \"256MiB\"\n[link]\nrate = \"1kbit\"\n").unwrap();
    // The default blamed as a default, with both ways out.
    refused_at(
        "[guest]\nram = \"256MiB\"\n[link]\nrate = \"5mbit\"\n[service]\nkind = \"tcp-stream\"\n",
        5,
        "service.stream_rate",
        "the TCP stream's rate, 5mbit unless set, needs a link of at least 10mbit (it may use half of the link it shares with the migration), and link.rate has 5mbit: set a lower service.stream_rate or a faster link.rate",
    );
    refused_at(
        &format!("{base}buffer = [\"1s\", \"-1s\"]\n"),
        6,
        "service.buffer",
        "negative",
    );
}

#[test]
fn faults_are_a_dimension_and_postcopy_faults_run_only_where_postcopy_does() {
    let text = r#"
[guest]
ram = "256MiB"
[link]
rate = "100mbit"
[fault]
inject = ["none", "link-down for 2s at pass 2", "dst-kill at postcopy"]
[[variant]]
name = "precopy"
[[variant]]
name = "postcopy"
migration.postcopy = "after 1 pass"
"#;
    let sc = parse(text).unwrap();
    let runs = migbench_model::expand(&sc);
    // 3 faults x 2 variants, less the post-copy fault in the pre-copy variant.
    assert_eq!(runs.len(), 5);
    assert!(runs
        .iter()
        .all(|r| r.fault.to_string() != "dst-kill at postcopy" || r.variant == "postcopy"));
    assert!(runs.iter().enumerate().all(|(i, r)| r.index == i));
}

#[test]
fn faults_that_cannot_strike_are_refused_naming_the_field() {
    let base = "[guest]\nram = \"256MiB\"\n[link]\nrate = \"100mbit\"\n";
    refused_at(
        &format!("{base}[fault]\ninject = \"dst-kill at postcopy\"\n"),
        6,
        "fault.inject",
        "no run enables it",
    );
    refused_at(
        &format!("{base}[fault]\ninject = \"storage-down\"\n"),
        6,
        "fault.inject",
        "shared-nbd",
    );
    refused_at(
        &format!("{base}[fault]\ninject = [\"none\", \"link-dowm\"]\n"),
        6,
        "fault.inject",
        "the faults are none, link-down",
    );
    // Through libvirt: the environment's faults strike, but neither at a
    // hold before switchover nor with post-copy (QMP only).
    let libvirt = format!("{base}[backend]\nkind = \"libvirt\"\n");
    assert!(parse(&format!(
        "{libvirt}[fault]\ninject = [\"dst-kill at 5s\", \"link-down for 3s at 5s\"]\n"
    ))
    .is_ok());
    refused_at(
        &format!("{libvirt}[fault]\ninject = [\"dst-kill\", \"link-down for 3s at switchover\"]\n"),
        8,
        "fault.inject",
        "`link-down for 3s at switchover`: backend libvirt lacks the capability `holding before switchover`",
    );
    refused_at(
        &format!(
            "{libvirt}[migration]\npostcopy = \"after 2s\"\n[fault]\ninject = \"dst-kill at 5s\"\n"
        ),
        10,
        "fault.inject",
        "with post-copy: backend libvirt lacks the capability `post-copy recovery`",
    );
}

#[test]
fn a_syntax_error_says_where_and_what_without_an_empty_field_name() {
    for (text, line, what) in [
        (
            "[guest]\nram = \"256MiB\"\n[link]\nrate = \"1gbit\"\nrate = \"2gbit\"\n",
            5,
            "duplicate key `rate` in table `link`",
        ),
        (
            "[guest]\nram = \"256MiB\"\n[link]\nrate = \"1gbit\"\n[a\n",
            5,
            "invalid table header",
        ),
    ] {
        let e = parse(text).unwrap_err().to_string();
        assert!(e.starts_with(&format!("scenarios/t.toml:{line}:")), "{e}");
        assert!(e.contains(what), "{e}");
        assert!(!e.contains("field ``"), "{e}");
    }
}

#[test]
fn a_transport_other_than_direct_needs_libvirt_and_a_tunnel_refuses_multifd_and_disk_copies() {
    let base = "[guest]\nram = \"256MiB\"\n[link]\nrate = \"100mbit\"\n";
    refused_at(
        &format!("{base}[backend]\ntransport = [\"direct\", \"p2p\"]\n"),
        6,
        "backend.transport",
        "backend qmp lacks the capability `peer-to-peer and tunnelled transports`: kind = \"libvirt\"",
    );
    refused_at(
        &format!("{base}[backend]\nkind = \"libvirt\"\ntransport = \"tunnelled\"\n[migration]\nmultifd_channels = 2\n"),
        7,
        "backend.transport",
        "libvirt refuses multifd channels with it",
    );
    refused_at(
        &format!("{base}[backend]\nkind = \"libvirt\"\ntransport = [\"p2p\", \"tunnelled\"]\n[storage]\nmode = \"block\"\n"),
        7,
        "backend.transport",
        "block migration needs transport = \"direct\" or \"p2p\"",
    );
    refused_at(
        &format!("{base}[backend]\nkind = \"libvirt\"\ntransport = \"tunneled\"\n"),
        7,
        "backend.transport",
        "one of: \"direct\" \"p2p\" \"tunnelled\"",
    );
    let sc = parse(&format!(
        "{base}[backend]\nkind = \"libvirt\"\ntransport = [\"direct\", \"p2p\", \"tunnelled\"]\n"
    ))
    .unwrap();
    let runs = migbench_model::matrix::expand(&sc);
    let seen: Vec<String> = runs.iter().map(|r| r.transport.to_string()).collect();
    assert_eq!(seen, ["direct", "p2p", "tunnelled"]);
    assert!(
        runs[2].label().starts_with("libvirt tunnelled "),
        "{}",
        runs[2].label()
    );
}
