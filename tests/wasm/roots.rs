//! Root contexts over time, as Envoy keeps them: a configuration change brings a new root and
//! removes the old one (ECDS at once, LDS after the drain), without telling the module. A root
//! Envoy removed is dropped once it has not ticked for `liveness::GONE_AFTER_NS` on the VM's
//! clock; a live one never is, however busy the thread or wherever the wall clock jumps. The
//! per-pair counters count by pair, whichever root counts.

use std::time::Duration;

use sni_guard::liveness::GONE_AFTER_NS;
use sni_guard::metrics::MAX_SERVER_PAIRS;
use wasm_test_harness::Plugin;

use super::cel_check::load_with_envoy_cel;

const SECOND: Duration = Duration::from_secs(1);
const TWO_SERVERS: &str = r#"{"servers":[{"hosts":["a.example.com"]},{"hosts":["b.example.com"]}]"#;

fn dropped(plugin: &Plugin, root: u32) -> bool {
    plugin.logs().iter().any(|l| l.message.contains(&format!("root context {root} has stopped ticking")))
}

fn status(plugin: &mut Plugin, root: u32, sni: &str, authority: &str) -> Option<u32> {
    plugin.request().root(root).sni(sni).authority(authority).send().unwrap().status()
}

/// One second of Envoy's dispatcher: each of `roots` ticks once, in this order.
fn second(plugin: &mut Plugin, roots: &[u32]) {
    plugin.advance_clock(SECOND);
    for &root in roots {
        plugin.tick_root_now(root).unwrap();
    }
}

#[test]
fn a_removed_root_is_dropped_after_the_window() {
    let (mut plugin, _) = load_with_envoy_cel(r#"{"mode":"dry_run"}"#);
    let old = plugin.roots()[0];
    let new = plugin.add_root("").unwrap();
    plugin.remove_root(old).unwrap();
    let window = GONE_AFTER_NS / 1_000_000_000;
    for _ in 0..window {
        second(&mut plugin, &[new]);
    }
    assert!(!dropped(&plugin, old), "kept for the window: {:?}", plugin.logs());
    second(&mut plugin, &[new]);
    assert!(dropped(&plugin, old), "{:?}", plugin.logs());
    assert_eq!(status(&mut plugin, new, "a.example.com", "b.example.com"), Some(421));
    // The number of dead roots does not stretch the window (it did: 300 ticks per root).
    let mut removed = Vec::new();
    let mut live = new;
    for _ in 0..20 {
        let next = plugin.add_root("").unwrap();
        plugin.remove_root(live).unwrap();
        removed.push(live);
        live = next;
    }
    for _ in 0..=window {
        second(&mut plugin, &[live]);
    }
    assert!(removed.iter().all(|&r| dropped(&plugin, r)), "{:?}", plugin.logs());
}

/// Live roots keep their configurations through a thread busy for minutes (every timer fires
/// late, then all together), the wall clock jumping an hour ahead, a day back, or standing
/// still, and ticks in any order.
#[test]
fn a_live_root_is_never_dropped() {
    let (mut plugin, _) = load_with_envoy_cel(r#"{"mode":"dry_run"}"#);
    let a = plugin.roots()[0];
    let b = plugin.add_root("").unwrap();
    let c = plugin.add_root(format!("{TWO_SERVERS}}}")).unwrap();
    let start = plugin.clock();
    for i in 0..3000u64 {
        match i % 500 {
            // Busy: two minutes without any tick, then all of them.
            100 => plugin.advance_clock(Duration::from_secs(120)),
            // The wall clock an hour ahead, then back by a day.
            200 => plugin.advance_clock(Duration::from_secs(3600)),
            300 => plugin.set_clock(plugin.clock() - 86_400 * 1_000_000_000),
            // Standing still for a while (ticks come, the clock does not move).
            400..=450 => plugin.set_clock(plugin.clock() - 1_000_000_000),
            _ => {}
        }
        let order = match i % 3 {
            0 => [a, b, c],
            1 => [c, a, b],
            _ => [b, c, a],
        };
        second(&mut plugin, &order);
    }
    assert!(plugin.clock() != start);
    assert!(!plugin.logs().iter().any(|l| l.message.contains("stopped ticking")), "{:?}", plugin.logs());
    assert_eq!(status(&mut plugin, a, "a.example.com", "b.example.com"), None, "a: still dry_run");
    assert_eq!(status(&mut plugin, b, "a.example.com", "b.example.com"), Some(421), "b: still enforce");
    assert_eq!(status(&mut plugin, c, "a.example.com", "c.example.com"), None, "c: a host of no server");
    assert_eq!(status(&mut plugin, b, "a.example.com", "c.example.com"), Some(421), "b: no servers, strict");
}

/// A change every second for a minute at 10,000 servers, quiet, then again: the second minute
/// must grow the module's memory by at most 5% of what the first grew it (the first grows it to
/// hold the configurations of one window at once; a linear memory never shrinks, the allocator
/// reuses it). Before roots were dropped by time, each minute added 60 configurations.
#[test]
fn configuration_churn_leaves_memory_flat() {
    let servers: Vec<String> =
        (0..10_000).map(|i| format!(r#"{{"hosts":["h{i}.example.com","*.w{i}.example.net"]}}"#)).collect();
    let config = |change: usize| {
        // Each change renames one server: a new configuration every time.
        let mut servers = servers.clone();
        let at = change % servers.len();
        servers[at] = format!(r#"{{"hosts":["changed{change}.example.org"]}}"#);
        format!(r#"{{"servers":[{}]}}"#, servers.join(","))
    };
    let (mut plugin, _) = load_with_envoy_cel(&config(0));
    let mut live = plugin.roots()[0];
    let start = plugin.memory_pages();
    let mut change = 0;
    let mut round = |plugin: &mut Plugin, live: &mut u32| {
        for _ in 0..60 {
            change += 1;
            let next = plugin.add_root(config(change)).unwrap();
            plugin.remove_root(*live).unwrap();
            *live = next;
            second(plugin, &[*live]);
        }
        for _ in 0..=GONE_AFTER_NS / 1_000_000_000 {
            second(plugin, &[*live]);
        }
        assert_eq!(status(plugin, *live, "h1.example.com", "x.w2.example.net"), Some(421));
        plugin.memory_pages()
    };
    let first = round(&mut plugin, &mut live);
    let second_round = round(&mut plugin, &mut live);
    let dropped = plugin.logs().iter().filter(|l| l.message.contains("stopped ticking")).count();
    println!(
        "linear memory: {start} pages with one configuration, {first} after the first minute of changes, \
         {second_round} after the second"
    );
    assert_eq!(dropped, 120, "every replaced root dropped");
    // Allocator fragmentation aside (a few pages), the second minute fits in the first's memory.
    assert!(
        (second_round - first) * 20 <= first - start,
        "the second minute grew the module's memory by {} pages, the first by {}",
        second_round - first,
        first - start
    );
}

/// After 50 configuration changes, each root counting the same three pairs, each pair's
/// counter has them all (they went to `other` after about 34 changes when series were kept per
/// root).
#[test]
fn per_pair_counters_survive_fifty_changes() {
    let config = |i: usize| {
        format!(
            r#"{{"servers":[{{"hosts":["a.x"]}},{{"hosts":["b.x"]}},{{"hosts":["c.x"]}}],"response_body":"{i}\n"}}"#
        )
    };
    let pairs = [("a.x", "b.x"), ("b.x", "c.x"), ("c.x", "a.x")];
    let pair = |(sni, host): (&str, &str)| {
        format!("sni_guard.connection_server=.={sni};.;host_server=.={host};.;rejected_by_server")
    };
    let (mut plugin, _) = load_with_envoy_cel(&config(0));
    let mut live = plugin.roots()[0];
    for i in 1..=50 {
        for (sni, host) in pairs {
            assert_eq!(status(&mut plugin, live, sni, host), Some(421));
        }
        let next = plugin.add_root(config(i)).unwrap();
        plugin.remove_root(live).unwrap();
        live = next;
        // Whether the old root is dropped yet or not, the pair counts in its own series.
        second(&mut plugin, &[live]);
        if i % 2 == 0 {
            for _ in 0..=GONE_AFTER_NS / 1_000_000_000 {
                second(&mut plugin, &[live]);
            }
        }
    }
    for (sni, host) in pairs {
        assert_eq!(status(&mut plugin, live, sni, host), Some(421));
        assert_eq!(plugin.metric(&pair((sni, host))), Some(51), "{:?}", plugin.metrics());
    }
    let series = plugin.metrics().into_keys().filter(|k| k.ends_with("_by_server")).count();
    assert_eq!(series, 3, "no other series: {:?}", plugin.metrics());
    // The bound still holds within one configuration.
    let many: Vec<String> = (0..MAX_SERVER_PAIRS + 5).map(|i| format!(r#"{{"hosts":["h{i}.example.com"]}}"#)).collect();
    let many = plugin.add_root(format!(r#"{{"servers":[{{"hosts":["a.x"]}},{}]}}"#, many.join(","))).unwrap();
    for i in 0..MAX_SERVER_PAIRS + 5 {
        assert_eq!(status(&mut plugin, many, "a.x", &format!("h{i}.example.com")), Some(421));
    }
    let series = plugin.metrics().into_keys().filter(|k| k.ends_with("_by_server")).count();
    assert_eq!(series, MAX_SERVER_PAIRS + 1, "the three pairs' series, 97 more, and other");
}
