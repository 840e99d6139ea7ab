//! The Deployment's probes reach meshprobe, and every check calls a real Istio cluster.

use super::*;

#[test]
fn deployment_probes_reach_meshprobe_through_the_sidecar() {
    // The HTTP workload (grpc.rs has the gRPC one).
    let deployment: Vec<_> = docs_of("Deployment")
        .into_iter()
        .filter(|d| d.name() == "orders")
        .collect();
    assert_eq!(deployment.len(), 1);
    let deployment = deployment[0];
    let spec = &deployment.value["spec"];
    let template = &spec["template"];
    let labels = &template["metadata"]["labels"];
    assert!(
        selects(&spec["selector"]["matchLabels"], labels),
        "selector matches the pods"
    );

    // Probe rewrite off, as a string (annotation values are strings).
    assert_eq!(
        template["metadata"]["annotations"]["sidecar.istio.io/rewriteAppHTTPProbers"],
        json!("false")
    );

    // The workload's plugin: selected by the pods' labels.
    let plugin = docs_of("WasmPlugin")
        .into_iter()
        .find(|p| {
            p.namespace() == deployment.namespace()
                && selects(&p.value["spec"]["selector"]["matchLabels"], labels)
        })
        .expect("a WasmPlugin selecting the Deployment's pods");
    let policy = policy_of(plugin);
    let probe_port = plugin.value["spec"]["match"][0]["ports"][0]["number"]
        .as_u64()
        .unwrap();
    let header = policy["authorization"]["header"].as_str().unwrap();
    let endpoints: BTreeMap<&str, &Value> = policy["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["path"].as_str().unwrap(), e))
        .collect();

    let containers = template["spec"]["containers"].as_array().unwrap();
    let app = containers
        .iter()
        .find(|c| c.get("livenessProbe").is_some())
        .unwrap();
    let mut values = BTreeSet::new();
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        let p = &app[probe];
        let get = &p["httpGet"];
        assert_eq!(get["port"], probe_port, "{probe}: the plugin's probe port");
        let path = get["path"].as_str().unwrap();
        let endpoint = endpoints
            .get(path)
            .unwrap_or_else(|| panic!("{probe}: {path} is not an endpoint of the policy"));
        let sent: Vec<&Value> = get["httpHeaders"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["name"] == header)
            .collect();
        assert_eq!(sent.len(), 1, "{probe}: sends the {header} header once");
        values.insert(sent[0]["value"].as_str().unwrap());
        let deadline = millis(endpoint["deadline"].as_str().unwrap_or("800ms"));
        let timeout = p["timeoutSeconds"].as_u64().unwrap_or(1) * 1000;
        assert!(
            deadline < timeout,
            "{probe}: deadline {deadline}ms >= timeoutSeconds"
        );
    }
    assert_eq!(values.len(), 1, "every probe sends the same secret");

    // The proxy has every variable the plugin reads from HOST, from a Secret.
    let proxy = containers
        .iter()
        .find(|c| c["name"] == "istio-proxy")
        .expect("an istio-proxy entry carrying the token");
    for var in env_names(plugin.module()) {
        let e = proxy["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == var.as_str())
            .unwrap_or_else(|| panic!("istio-proxy lacks {var}"));
        assert!(
            e.pointer("/valueFrom/secretKeyRef/name").is_some(),
            "{var} from a Secret"
        );
    }
    // The probe port is declared on the pod.
    assert!(app["ports"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["containerPort"] == probe_port));

    // Plaintext accepted on the probe port.
    let pa = docs_of("PeerAuthentication")
        .into_iter()
        .find(|p| {
            p.namespace() == deployment.namespace()
                && selects(&p.value["spec"]["selector"]["matchLabels"], labels)
        })
        .expect("a PeerAuthentication for the pods");
    let mode = &pa.value["spec"]["portLevelMtls"][probe_port.to_string()]["mode"];
    assert!(
        mode == "PERMISSIVE" || mode == "DISABLE",
        "probe port {probe_port} must accept plaintext, has {mode}"
    );

    // A Service declares the probe port as HTTP, and every inbound|N|| check
    // cluster exists (a Service selects the pods on target port N).
    let service = docs_of("Service")
        .into_iter()
        .find(|s| {
            s.namespace() == deployment.namespace() && selects(&s.value["spec"]["selector"], labels)
        })
        .expect("a Service selecting the pods");
    let ports = service.value["spec"]["ports"].as_array().unwrap();
    let http_port = |n: u64| {
        ports.iter().any(|p| {
            p["targetPort"] == n
                && (p["appProtocol"] == "http"
                    || p["name"].as_str().is_some_and(|s| s.starts_with("http")))
        })
    };
    assert!(
        http_port(probe_port),
        "Service declares {probe_port} as HTTP"
    );
    for check in policy["checks"].as_array().unwrap() {
        let cluster = check["cluster"].as_str().unwrap();
        if let Some(rest) = cluster.strip_prefix("inbound|") {
            let n: u64 = rest.split('|').next().unwrap().parse().unwrap();
            assert!(
                http_port(n),
                "{cluster}: no Service selects the pods on {n}"
            );
        }
    }
}

#[test]
fn every_check_calls_an_istio_cluster_with_a_real_authority() {
    let service_entries = docs_of("ServiceEntry");
    for p in plugins() {
        for check in policy_of(p)["checks"].as_array().into_iter().flatten() {
            let name = format!("{}: check {}", p.id(), check["name"]);
            let cluster = check["cluster"].as_str().unwrap();
            if check["kind"]
                .as_str()
                .is_some_and(|k| k.starts_with("envoy_"))
            {
                // Envoy's admin API: Istio's bootstrap cluster to the admin port.
                assert_eq!(cluster, "prometheus_stats", "{name}");
                continue;
            }
            let parts: Vec<&str> = cluster.split('|').collect();
            assert_eq!(
                parts.len(),
                4,
                "{name}: {cluster} is not direction|port|subset|host"
            );
            let port: u16 = parts[1].parse().unwrap();
            assert!(port > 0);
            match parts[0] {
                "inbound" => assert!(parts[3].is_empty(), "{name}: inbound|<port>||"),
                "outbound" => assert!(!parts[3].is_empty(), "{name}: outbound host"),
                other => panic!("{name}: direction {other}"),
            }
            // The default authority is the cluster name, not a valid Host.
            let authority = check["authority"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: set authority"));
            assert!(!authority.contains('|'), "{name}: authority {authority}");
            let host = parts[3];
            if parts[0] == "outbound" && !host.ends_with(".svc.cluster.local") {
                assert_eq!(authority, host, "{name}: external Host");
                let se = service_entries
                    .iter()
                    .find(|se| {
                        se.value["spec"]["hosts"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|h| h == host)
                    })
                    .unwrap_or_else(|| panic!("{name}: no ServiceEntry for {host}"));
                let se_port = se.value["spec"]["ports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|sp| sp["number"] == port)
                    .unwrap_or_else(|| panic!("{name}: ServiceEntry lacks port {port}"));
                // Plain-HTTP callouts to a TLS port need TLS origination.
                if se_port["targetPort"] == 443 {
                    let dr = docs_of("DestinationRule")
                        .into_iter()
                        .find(|d| d.value["spec"]["host"] == host)
                        .unwrap_or_else(|| panic!("{name}: no DestinationRule originating TLS"));
                    let tls = dr.value["spec"]["trafficPolicy"]["portLevelSettings"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|s| s["port"]["number"] == port)
                        .map(|s| &s["tls"])
                        .unwrap();
                    assert_eq!(tls["mode"], "SIMPLE", "{name}");
                    assert_eq!(tls["sni"], host, "{name}");
                }
            }
        }
    }
}
