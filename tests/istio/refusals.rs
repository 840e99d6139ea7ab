//! Negative tests: what Kubernetes reads differently, and mutations the API server must refuse.

use super::*;

#[test]
fn yaml_scalars_mean_the_same_to_kubernetes() {
    // Kubernetes reads YAML 1.1 (sigs.k8s.io/yaml): yes/no/on/off/y/n are
    // booleans there, strings to the YAML 1.2 parser of this test. Quote them.
    const AMBIGUOUS: &[&str] = &["y", "n", "yes", "no", "on", "off"];
    for path in istio_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split(" #").next().unwrap().trim();
            if code.starts_with('#') {
                continue;
            }
            let value = code
                .rsplit_once(": ")
                .map(|(_, v)| v)
                .or_else(|| code.strip_prefix("- "))
                .unwrap_or("")
                .trim();
            assert!(
                !AMBIGUOUS.contains(&value.to_ascii_lowercase().as_str()),
                "{}:{}: quote {value:?} (a boolean to Kubernetes)",
                path.display(),
                i + 1
            );
        }
    }
}

/// Mutations of valid documents that the API server must refuse, one per line:
/// `kind name json-pointer new-value | fragment of the expected error`, the
/// new value as JSON, or `-` to remove the field.
const BROKEN: &str = r#"
# Unknown enum values and wrong types.
WasmPlugin meshprobe-orders /spec/failStrategy "FAIL_SOMETIMES"      | "FAIL_SOMETIMES" is not one of
WasmPlugin meshprobe-orders /spec/phase "AUTHZN"                     | "AUTHZN" is not one of
WasmPlugin meshprobe-orders /spec/phase "UNSPECIFIED"                | "UNSPECIFIED" is not one of
WasmPlugin meshprobe-orders /spec/priority "high"                    | /spec/priority: "high" is not valid
WasmPlugin meshprobe-orders /spec/priority 2147483648                | /spec/priority: 2147483648 is not valid
WasmPlugin meshprobe-orders /spec/vmConfig/env/0/valueFrom "SECRET"  | "SECRET" is not one of
WasmPlugin meshprobe-orders /spec/match/0/mode "INBOUND"             | "INBOUND" is not one of
WasmPlugin meshprobe-orders /spec/match/0/ports/0/number 70000       | 70000 is greater than the maximum of 65535
WasmPlugin meshprobe-orders /spec/match/0/ports/0/number "8081"      | "8081" is not of type "integer"
WasmPlugin meshprobe-orders /spec/sha256 "ABC123"                    | "ABC123" does not match
WasmPlugin meshprobe-orders /spec/url -                              | "url" is a required property
# Unknown fields (structural strictness), at several depths.
WasmPlugin meshprobe-orders /spec/failstrategy "FAIL_OPEN"           | 'failstrategy' was unexpected
WasmPlugin meshprobe-orders /spec/vmConfig/env/0/secretKeyRef "t"    | 'secretKeyRef' was unexpected
WasmPlugin meshprobe-orders /spec/match/0/port 8081                  | 'port' was unexpected
WasmPlugin meshprobe-orders /metadata/nmae "x"                       | 'nmae' was unexpected
WasmPlugin meshprobe-orders /status2 {}                              | 'status2' was unexpected
# Envelope.
WasmPlugin meshprobe-orders /apiVersion "extensions.istio.io/v1"     | no served CRD version
WasmPlugin meshprobe-orders /metadata/name "Meshprobe_Orders"        | "Meshprobe_Orders" does not match
WasmPlugin meshprobe-orders /metadata/labels {"tier": 1}             | 1 is not of type "string"
# CEL rules and list types.
WasmPlugin meshprobe-orders /spec/targetRefs [{"kind": "Gateway", "name": "g"}] | only one of targetRefs or selector
WasmPlugin meshprobe-orders /spec/vmConfig/env/0/value "inline"      | value may only be set when valueFrom is INLINE
WasmPlugin meshprobe-orders /spec/url "ftp://example.com/m.wasm"     | url must have schema one of
WasmPlugin meshprobe-orders /spec/vmConfig/env/1 {"name": "MESHPROBE_TOKEN"} | duplicate entries with name="MESHPROBE_TOKEN"
WasmPlugin meshprobe-orders /spec/selector/matchLabels/app "ord*"    | wildcard not allowed in label value match
WasmPlugin meshprobe-gateway /spec/targetRefs/0/namespace "other"    | cross namespace referencing is not currently supported
# TrafficExtension: WasmPlugin habits, and its own rules.
TrafficExtension meshprobe-orders /spec/failStrategy "FAIL_OPEN"     | 'failStrategy' was unexpected
TrafficExtension meshprobe-orders /spec/phase "UNSPECIFIED_PHASE"    | "UNSPECIFIED_PHASE" is not one of
TrafficExtension meshprobe-orders /spec/lua {"inlineCode": "x"}      | exactly one of wasm or lua must be set
TrafficExtension meshprobe-orders /spec/wasm/failStrategy "FAIL_SOMETIMES" | "FAIL_SOMETIMES" is not one of
TrafficExtension meshprobe-gateway /spec/targetRef {"kind": "Gateway", "name": "public"} | 'targetRef' was unexpected
# PeerAuthentication, ServiceEntry, DestinationRule.
PeerAuthentication orders-probe-port /spec/selector -                | portLevelMtls requires selector
PeerAuthentication orders-probe-port /spec/portLevelMtls/8081/mode "LAX" | "LAX" is not one of
PeerAuthentication orders-probe-port /spec/portLevelMtls/probe {"mode": "DISABLE"} | port must be between 1-65535
ServiceEntry githubstatus /spec/hosts/0 "*"                          | hostname cannot be wildcard
ServiceEntry githubstatus /spec/ports/1/number 80                    | port number cannot be duplicated
ServiceEntry githubstatus /spec/location "OUTSIDE"                   | "OUTSIDE" is not one of
DestinationRule githubstatus /spec/trafficPolicy/portLevelSettings/0/tls/mode "TLS" | "TLS" is not one of
"#;

#[test]
fn broken_resources_are_refused() {
    let mut cases = 0;
    let mut accepted = Vec::new();
    for line in BROKEN.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        cases += 1;
        let (change, expect) = line.split_once(" | ").unwrap();
        let mut words = change.splitn(4, ' ');
        let (kind, name, pointer) = (
            words.next().unwrap(),
            words.next().unwrap(),
            words.next().unwrap(),
        );
        let value = match words.next().unwrap().trim() {
            "-" => None,
            json => Some(serde_json::from_str::<Value>(json).unwrap()),
        };
        let base = docs()
            .iter()
            .find(|d| d.kind() == kind && d.name() == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"));
        assert!(
            api_server_errors(&base.value).is_empty(),
            "{}: valid to start with",
            base.id()
        );
        let errors = api_server_errors(&mutate(&base.value, pointer, value));
        if !errors.iter().any(|e| e.contains(expect.trim())) {
            accepted.push(format!(
                "{change}: expected an error containing {expect:?}, got {errors:#?}"
            ));
        }
    }
    assert_eq!(cases, 37);
    assert!(
        accepted.is_empty(),
        "not refused as expected:\n{}",
        accepted.join("\n")
    );
}

#[test]
fn strictness_stops_where_the_schema_preserves_unknown_fields() {
    // pluginConfig is opaque to Kubernetes (x-kubernetes-preserve-unknown-fields):
    // a typo in it passes the CRD, and meshprobe's validator refuses it.
    let wp = doc("WasmPlugin", "prod", "meshprobe-orders");
    let typo = mutate(
        &wp.value,
        "/spec/pluginConfig/endpoints/0/deadlin",
        Some(json!("1s")),
    );
    assert!(
        api_server_errors(&typo).is_empty(),
        "{:?}",
        api_server_errors(&typo)
    );
    let errors = policy_errors(&typo["spec"]).expect("meshprobe accepts an unknown field");
    assert!(errors.contains("deadlin"), "{errors}");

    // The policy validator sees only the variables vmConfig.env provides.
    let no_env = mutate(&wp.value, "/spec/vmConfig", None);
    assert!(api_server_errors(&no_env).is_empty());
    let errors = policy_errors(&no_env["spec"]).expect("a secret without its variable");
    assert!(errors.contains("MESHPROBE_TOKEN"), "{errors}");

    // A check that does not exist.
    let te = doc("TrafficExtension", "prod", "meshprobe-orders");
    let unknown = mutate(
        &te.value,
        "/spec/wasm/pluginConfig/endpoints/1/checks/0",
        Some(json!("dbb")),
    );
    assert!(api_server_errors(&unknown).is_empty());
    let errors = policy_errors(&unknown["spec"]["wasm"]).expect("an unknown check");
    assert!(errors.contains("dbb"), "{errors}");
}

#[test]
fn the_url_rule_equivalent_reads_schemes_like_go() {
    let rule = r#"isURL(self) ? (url(self).getScheme() in ["", "http", "https", "oci", "file"]) : (isURL("http://" + self) && url("http://" + self).getScheme() in ["", "http", "https", "oci", "file"])"#;
    for ok in [
        "oci://ghcr.io/org/meshprobe:0.1.0",
        "ghcr.io/org/meshprobe:0.1.0",
        "file:///var/local/lib/wasm/meshprobe.wasm",
        "HTTPS://example.com/m.wasm",
    ] {
        assert!(url_scheme_allowed(rule, ok), "{ok}");
    }
    for bad in ["ftp://example.com/m.wasm", "localhost:5000/meshprobe", ""] {
        assert!(!url_scheme_allowed(rule, bad), "{bad}");
    }
}
