//! The module keeps no per-stream state: 100,000 streams must not grow its linear memory.

use std::time::Instant;

#[test]
fn linear_memory_stays_flat_over_100k_streams() {
    let mut plugin = super::load(
        r#"{"servers":[{"hosts":["a.example.com","c.example.com"]},{"hosts":["b.example.com"]}],"exempt_paths":["/.well-known/"]}"#,
    );
    let long = "x".repeat(4096);
    let run = |plugin: &mut wasm_test_harness::Plugin, i: usize| {
        let request = plugin.request().sni("a.example.com");
        let request = match i % 5 {
            0 => request.authority("a.example.com"),
            1 => request.authority("c.example.com:443"),
            2 => request.authority("b.example.com").protocol("HTTP/1.1"),
            3 => request.authority(&long),
            _ => request.authority("b.example.com").path("/.well-known/x"),
        };
        let outcome = request.send().unwrap();
        assert_eq!(outcome.status().is_some(), i % 5 == 2 || i % 5 == 3, "stream {i}");
        if i.is_multiple_of(1000) {
            plugin.tick().unwrap();
        }
    };
    for i in 0..1000 {
        run(&mut plugin, i);
    }
    let warm = plugin.memory_pages();
    let started = Instant::now();
    for i in 0..100_000 {
        run(&mut plugin, i);
    }
    let after = plugin.memory_pages();
    println!(
        "linear memory: {warm} pages after 1,000 warm-up streams, {after} pages after 100,000 more ({:.2?})",
        started.elapsed()
    );
    assert_eq!(after, warm, "linear memory grew from {warm} to {after} pages over 100,000 streams");
    plugin.tick().unwrap();
    assert_eq!(plugin.metric("sni_guard.checked"), Some(101_000));
    assert_eq!(plugin.metric("sni_guard.rejected"), Some(40_400));
}
