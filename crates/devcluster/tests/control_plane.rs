//! The control plane behaves like a real cluster: real versions, namespace finalization,
//! garbage collection, client-certificate users under RBAC, and no fixed ports.

use devcluster::{ControlPlane, Options, eventually, shared};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::{Api, Client};

fn config_map(name: &str, owner: Option<&ConfigMap>) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            owner_references: owner.map(|o| {
                vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    name: o.metadata.name.clone().unwrap_or_default(),
                    uid: o.metadata.uid.clone().unwrap_or_default(),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn kubectl_reports_the_real_server_version() {
    let plane = shared().expect("control plane");
    let out = plane.kubectl().args(["version", "-o", "json"]).output().expect("kubectl runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let version: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let server = version["serverVersion"]["gitVersion"].as_str().unwrap_or_default();
    assert!(server.starts_with("v1.3"), "server version {server}");
    assert_ne!(version["serverVersion"]["minor"], "0");
}

#[tokio::test]
async fn deleted_namespace_with_objects_disappears() {
    let client = shared().unwrap().client().await.unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns =
        Namespace { metadata: ObjectMeta { name: Some("doomed".into()), ..Default::default() }, ..Default::default() };
    namespaces.create(&PostParams::default(), &ns).await.unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), "doomed")
        .create(&PostParams::default(), &config_map("payload", None))
        .await
        .unwrap();
    namespaces.delete("doomed", &DeleteParams::default()).await.unwrap();
    eventually("namespace doomed to be finalized", || async { namespaces.get_opt("doomed").await.unwrap().is_none() })
        .await;
}

#[tokio::test]
async fn dependents_of_a_deleted_owner_are_garbage_collected() {
    let client = shared().unwrap().client().await.unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client, "default");
    let owner = maps.create(&PostParams::default(), &config_map("gc-owner", None)).await.unwrap();
    maps.create(&PostParams::default(), &config_map("gc-dependent", Some(&owner))).await.unwrap();
    maps.delete("gc-owner", &DeleteParams::default()).await.unwrap();
    eventually("gc-dependent to be collected", || async { maps.get_opt("gc-dependent").await.unwrap().is_none() })
        .await;
}

#[tokio::test]
async fn non_admin_user_is_denied_until_a_role_binding_allows_it() {
    let plane = shared().unwrap();
    let admin = plane.client().await.unwrap();
    let alice = plane.client_as("alice", &["studio-devs"]).await.unwrap();

    let whoami = plane
        .kubectl()
        .env("KUBECONFIG", plane.mint_kubeconfig("alice", &["studio-devs"]).unwrap())
        .args(["auth", "whoami", "-o", "jsonpath={.status.userInfo.username} {.status.userInfo.groups}"])
        .output()
        .unwrap();
    let who = String::from_utf8_lossy(&whoami.stdout);
    assert!(who.starts_with("alice ") && who.contains("studio-devs"), "whoami: {who}");

    let as_alice: Api<ConfigMap> = Api::namespaced(alice, "default");
    let denied = as_alice.list(&Default::default()).await.expect_err("alice must be denied");
    assert!(matches!(denied, kube::Error::Api(ref s) if s.code == 403), "{denied:?}");

    let binding = RoleBinding {
        metadata: ObjectMeta { name: Some("alice-view".into()), ..Default::default() },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: "view".into(),
        },
        subjects: Some(vec![Subject {
            kind: "Group".into(),
            name: "studio-devs".into(),
            api_group: Some("rbac.authorization.k8s.io".into()),
            ..Default::default()
        }]),
    };
    Api::<RoleBinding>::namespaced(admin, "default").create(&PostParams::default(), &binding).await.unwrap();
    eventually("alice to be allowed by the group binding", || async {
        as_alice.list(&Default::default()).await.is_ok()
    })
    .await;
}

#[tokio::test]
async fn two_control_planes_run_side_by_side_and_are_torn_down() {
    let first = shared().unwrap();
    let second = ControlPlane::start(Options::for_tests().unwrap()).await.expect("second plane");
    assert_ne!(first.server, second.server, "each plane has its own port");
    for client in [first.client().await.unwrap(), second.client().await.unwrap()] {
        assert!(Api::<Namespace>::all(client).get_opt("default").await.unwrap().is_some());
    }
    let (dir, server, pids) = (second.dir.clone(), second.server.clone(), second.pids());
    drop(second);
    assert!(!dir.exists(), "state directory removed");
    assert!(pids.iter().all(|pid| !devcluster::pid_alive(*pid as i32) || is_zombie(*pid)), "processes stopped");
    let gone = Client::try_from(kube::Config::new(server.parse().unwrap())).unwrap();
    assert!(Api::<Namespace>::all(gone).list(&Default::default()).await.is_err(), "apiserver no longer answers");
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| s.contains(") Z ")).unwrap_or(true)
}
