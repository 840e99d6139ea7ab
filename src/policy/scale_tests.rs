//! A policy of the size the benchmark loads: 100 endpoints, 1,000 checks.

use super::Policy;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn large() -> Policy {
    let checks: Vec<String> = (0..1000)
        .map(|i| format!(r#"{{"name": "c{i}", "cluster": "dep{}"}}"#, i % 7))
        .collect();
    // Paths in an order of their own, not the endpoints' order.
    let endpoints: Vec<String> = (0..100)
        .map(|e| {
            let names: Vec<String> = (0..10).map(|k| format!(r#""c{}""#, e * 10 + k)).collect();
            let path = format!("/p{:03}", (e * 37) % 100);
            format!(
                r#"{{"name": "e{e}", "path": "{path}", "checks": [{}]}}"#,
                names.join(", ")
            )
        })
        .collect();
    let json = format!(
        r#"{{"authorization": {{"header": "x-health", "secrets": [{{"value": "s"}}]}},
            "endpoints": [{}], "checks": [{}]}}"#,
        endpoints.join(", "),
        checks.join(", ")
    );
    match Policy::from_json(json.as_bytes(), &|_| None) {
        Ok(p) => p,
        Err(errors) => panic!("{errors:?}"),
    }
}

#[test]
fn every_endpoint_is_found_by_its_path_in_a_large_policy() {
    let policy = large();
    assert_eq!((policy.endpoints.len(), policy.checks.len()), (100, 1000));
    for (i, e) in policy.endpoints.iter().enumerate() {
        assert_eq!(policy.endpoint_by_path(&e.path), Some(i), "{}", e.path);
        assert_eq!(policy.endpoint_by_name(&e.name), Some(i));
    }
    for missing in ["/p100", "/p", "", "/p0000", "/a", "/q"] {
        assert_eq!(policy.endpoint_by_path(missing), None, "{missing}");
    }
}
