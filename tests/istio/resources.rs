//! Every resource is what the API server accepts, and says what it means: files, schemas, policies, plugins.

use super::*;

#[test]
fn every_file_starts_with_a_comment_and_holds_resources() {
    for path in istio_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with('#'),
            "{}: start the file with a comment explaining it",
            path.display()
        );
        assert!(
            path.extension().is_some_and(|e| e == "yaml"),
            "{}: name resource files *.yaml",
            path.display()
        );
    }
    for d in docs() {
        assert!(
            d.value["apiVersion"].is_string() && d.value["kind"].is_string(),
            "{}: not a Kubernetes resource",
            d.id()
        );
        assert!(
            !d.namespace().is_empty(),
            "{}: examples state their namespace",
            d.id()
        );
    }
}

#[test]
fn every_resource_is_accepted_by_its_crd_schema() {
    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for d in docs() {
        let api_version = d.str("/apiVersion");
        let errors = if crd_schema(api_version, d.kind()).is_some() {
            api_server_errors(&d.value)
        } else if BUILTIN.contains(&(api_version, d.kind())) {
            builtin_errors(&d.value)
        } else {
            vec![format!(
                "{api_version} {}: neither a CRD in the shared file nor a built-in kind this test knows",
                d.kind()
            )]
        };
        if errors.is_empty() {
            *checked.entry(d.kind().to_string()).or_default() += 1;
        } else {
            failures.push(format!("{}:\n  {}", d.id(), errors.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "refused:\n{}", failures.join("\n"));
    let want: BTreeMap<String, usize> = [
        ("WasmPlugin", 5),
        ("TrafficExtension", 5),
        ("PeerAuthentication", 2),
        ("ServiceEntry", 1),
        ("DestinationRule", 1),
        ("Deployment", 2),
        ("Service", 2),
        ("Telemetry", 1),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_string(), n))
    .collect();
    assert_eq!(checked, want, "resources checked, by kind");
}

#[test]
fn every_plugin_config_is_a_valid_meshprobe_policy() {
    let all = plugins();
    assert_eq!(all.len(), 10);
    for p in all {
        policy_of(p);
        if let Some(errors) = policy_errors(p.module()) {
            panic!("{}: meshprobe refuses its pluginConfig: {errors}", p.id());
        }
        // Every secret read from the environment is given to the VM.
        let secrets = p.module()["pluginConfig"]
            .pointer("/authorization/secrets")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for s in secrets {
            if let Some(var) = s["env"].as_str() {
                let entry = p.module()["vmConfig"]["env"]
                    .as_array()
                    .and_then(|env| env.iter().find(|e| e["name"] == var))
                    .unwrap_or_else(|| panic!("{}: {var} is not in vmConfig.env", p.id()));
                assert_eq!(
                    entry["valueFrom"],
                    "HOST",
                    "{}: {var} must come from the proxy's environment",
                    p.id()
                );
            }
        }
    }
}

#[test]
fn wasm_plugins_cover_every_scope_url_form_and_failure_strategy() {
    let wasm = docs_of("WasmPlugin");
    let scope = |d: &Doc| {
        let spec = &d.value["spec"];
        if spec.get("targetRefs").is_some() {
            "targetRefs"
        } else if spec.get("selector").is_some() {
            "selector"
        } else if d.namespace() == "istio-system" {
            "mesh"
        } else {
            "namespace"
        }
    };
    let scopes: BTreeSet<&str> = wasm.iter().map(|d| scope(d)).collect();
    assert_eq!(
        scopes,
        BTreeSet::from(["mesh", "namespace", "selector", "targetRefs"])
    );
    let mut url_forms = BTreeSet::new();
    let mut strategies = BTreeSet::new();
    for d in &wasm {
        let spec = &d.value["spec"];
        let url = spec["url"].as_str().unwrap();
        let form = url.split("://").next().unwrap();
        url_forms.insert(form);
        match form {
            "https" => assert!(
                spec["sha256"]
                    .as_str()
                    .is_some_and(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())),
                "{}: an https:// module must be pinned with sha256",
                d.id()
            ),
            // For oci:// Istio compares sha256 with the manifest digest, for
            // file:// it ignores it; the only sha256 here is the module's.
            "oci" | "file" => assert!(
                spec.get("sha256").is_none(),
                "{}: sha256 is only pinned for the https:// form (`just pin-sha` writes the module's)",
                d.id()
            ),
            other => panic!("{}: url form {other}", d.id()),
        }
        if form == "file" {
            assert!(
                url.starts_with("file:///"),
                "{}: absolute file path",
                d.id()
            );
        }
        assert_eq!(spec["phase"], "AUTHN", "{}: runs before authz", d.id());
        assert!(spec["priority"].is_i64(), "{}: priority", d.id());
        strategies.insert(spec["failStrategy"].as_str().unwrap());
        let modes: Vec<&str> = spec["match"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["mode"].as_str().unwrap())
            .collect();
        if scope(d) == "targetRefs" {
            assert_eq!(
                spec["targetRefs"][0]["kind"],
                "Gateway",
                "{}: targets a Gateway",
                d.id()
            );
            // Istio matches gateway listeners as CLIENT: SERVER would never apply.
            assert!(
                !modes.contains(&"SERVER"),
                "{}: gateway with mode SERVER",
                d.id()
            );
        } else {
            assert_eq!(modes, ["SERVER"], "{}: sidecar inbound only", d.id());
        }
    }
    assert_eq!(url_forms, BTreeSet::from(["file", "https", "oci"]));
    assert_eq!(strategies, BTreeSet::from(["FAIL_CLOSE", "FAIL_OPEN"]));
    // A dedicated probe port is matched somewhere.
    assert!(wasm
        .iter()
        .any(|d| d.value["spec"]["match"][0]["ports"][0]["number"].is_u64()));
    // Priorities order the plugins that can meet on one pod: workload, then
    // namespace, then mesh (higher runs first).
    let prio = |name: &str| {
        wasm.iter().find(|d| d.name() == name).unwrap().value["spec"]["priority"]
            .as_i64()
            .unwrap()
    };
    assert!(prio("meshprobe-orders") > prio("meshprobe-prod"));
    assert!(prio("meshprobe-prod") > prio("meshprobe-mesh"));
}

#[test]
fn traffic_extensions_say_what_the_wasm_plugins_say() {
    const MODULE_FIELDS: &[&str] = &[
        "url",
        "sha256",
        "imagePullPolicy",
        "imagePullSecret",
        "pluginName",
        "type",
        "failStrategy",
        "vmConfig",
        "pluginConfig",
    ];
    const SCOPE_FIELDS: &[&str] = &["selector", "targetRefs", "phase", "priority", "match"];
    let extensions = docs_of("TrafficExtension");
    assert_eq!(extensions.len(), docs_of("WasmPlugin").len());
    for te in extensions {
        let wp = doc("WasmPlugin", te.namespace(), te.name());
        let (te_spec, wp_spec) = (&te.value["spec"], &wp.value["spec"]);
        for f in SCOPE_FIELDS {
            assert_eq!(te_spec.get(*f), wp_spec.get(*f), "{}: spec.{f}", te.id());
        }
        for f in MODULE_FIELDS {
            assert_eq!(
                te_spec["wasm"].get(*f),
                wp_spec.get(*f),
                "{}: spec.wasm.{f}",
                te.id()
            );
        }
        for f in te_spec.as_object().unwrap().keys() {
            assert!(
                SCOPE_FIELDS.contains(&f.as_str()) || f == "wasm",
                "{}: spec.{f} has no WasmPlugin counterpart here",
                te.id()
            );
        }
        for f in wp_spec.as_object().unwrap().keys() {
            assert!(
                SCOPE_FIELDS.contains(&f.as_str()) || MODULE_FIELDS.contains(&f.as_str()),
                "{}: spec.{f} is not carried over to the TrafficExtension",
                wp.id()
            );
        }
    }
}
