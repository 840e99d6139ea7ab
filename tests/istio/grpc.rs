//! The gRPC workload (istio/grpc-workload.yaml): kubelet grpc: probes reach
//! meshprobe through the sidecar and select endpoints by service.

use super::*;

#[test]
fn grpc_probes_reach_meshprobe_through_the_sidecar() {
    let deployment = doc("Deployment", "prod", "shop");
    let template = &deployment.value["spec"]["template"];
    let labels = &template["metadata"]["labels"];
    // Istio's probe rewrite off, as a string.
    assert_eq!(
        template["metadata"]["annotations"]["sidecar.istio.io/rewriteAppHTTPProbers"],
        json!("false")
    );
    let plugin = docs_of("WasmPlugin")
        .into_iter()
        .find(|p| {
            p.namespace() == deployment.namespace()
                && selects(&p.value["spec"]["selector"]["matchLabels"], labels)
        })
        .expect("a WasmPlugin selecting the gRPC pods");
    let policy = policy_of(plugin);
    let port = plugin.value["spec"]["match"][0]["ports"][0]["number"]
        .as_u64()
        .unwrap();
    let app = &template["spec"]["containers"][0];
    let mut probes = 0;
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        let Some(grpc) = app[probe].get("grpc") else {
            continue;
        };
        probes += 1;
        assert_eq!(grpc["port"], port, "{probe}: the plugin's port");
        let service = grpc["service"].as_str().unwrap_or("");
        let endpoint = policy["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["grpc_service"].as_str() == Some(service))
            .unwrap_or_else(|| panic!("{probe}: no endpoint takes service {service:?}"));
        // kubelet grpc: probes send no metadata.
        assert_eq!(endpoint["access"], "public", "{probe}: public endpoint");
        let deadline = millis(endpoint["deadline"].as_str().unwrap_or("800ms"));
        let timeout = app[probe]["timeoutSeconds"].as_u64().unwrap_or(1) * 1000;
        assert!(deadline < timeout, "{probe}: deadline below timeoutSeconds");
    }
    assert_eq!(probes, 2);
    // The Service makes the inbound cluster HTTP/2 (gRPC), and plaintext
    // is accepted on the probe port.
    let service = doc("Service", "prod", "shop");
    assert!(service.value["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["targetPort"] == port && p["appProtocol"] == "grpc"));
    let pa = doc("PeerAuthentication", "prod", "shop");
    assert_eq!(
        pa.value["spec"]["portLevelMtls"][port.to_string()]["mode"],
        "PERMISSIVE"
    );
    // Every grpc check names its :authority (an Istio cluster name is none).
    for check in policy["checks"].as_array().unwrap() {
        assert_eq!(check["kind"], "grpc");
        assert!(check["authority"]
            .as_str()
            .is_some_and(|a| !a.contains('|')));
    }
}
