//! A cluster's membership and status (replication lag, clock offsets), the Raft listener's
//! tokens and source addresses, and nodes refusing damaged storage.

use std::sync::Arc;
use std::time::Duration;

use kron_core::input::Input;
use kron_core::schedule::ScheduleSpec;
use kron_server::backend::{Backend, ClusterStatus, MemberStatus};
use kron_server::http::{serve, Api};
use kron_server::node::{Node, NodeConfig};
use kron_server::setup::ServeConfig;

use super::{config, leader_of, snapshot_now, task_timer, TOKEN};

fn member<'a>(status: &'a ClusterStatus, name: &str) -> &'a MemberStatus {
    status
        .members
        .iter()
        .find(|m| m.member.node_id == name)
        .unwrap_or_else(|| panic!("no member {name}: {status:?}"))
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_roles_and_replication_lag_on_the_leader() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let n1 = Node::start(config(dirs[0].path(), "n1", None))
        .await
        .unwrap();
    leader_of(&n1).await;
    let n2 = Node::start(config(dirs[1].path(), "n2", Some("n1")))
        .await
        .unwrap();
    let n3 = Node::start(config(dirs[2].path(), "n3", Some("n1")))
        .await
        .unwrap();
    n1.join(n2.member()).await.unwrap();
    // A learner that is not promoted.
    let mut learner = n3.member();
    learner.voter = false;
    n1.join(learner).await.unwrap();
    n1.propose(Input::Register {
        at: n1.now(),
        def: task_timer("t", ScheduleSpec::Every { ms: 3_600_000 }),
    })
    .await
    .unwrap();

    wait_until("every member caught up", || {
        let s = n1.cluster_status();
        s.members.iter().all(|m| m.lag == Some(0))
    })
    .await;
    let status = n1.cluster_status();
    assert_eq!(status.members.len(), 3, "{status:?}");
    assert_eq!(member(&status, "n1").role, "voter");
    assert_eq!(member(&status, "n2").role, "voter");
    assert_eq!(member(&status, "n3").role, "learner");
    for m in &status.members {
        assert_eq!(m.matched_index, Some(status.last_log_index), "{m:?}");
        assert_eq!(m.matched_term, Some(status.term), "{m:?}");
    }
    let json = serde_json::to_value(member(&status, "n3")).unwrap();
    for key in [
        "node_id",
        "http_addr",
        "raft_addr",
        "voter",
        "role",
        "matched_index",
        "matched_term",
        "lag",
    ] {
        assert!(json.get(key).is_some(), "{key} in {json}");
    }
    // A follower does not know the others' progress.
    let follower = n2.cluster_status();
    assert_eq!(follower.role, "follower");
    assert!(
        follower.members.iter().all(|m| m.lag.is_none()),
        "{follower:?}"
    );

    // Leaving: a learner, then a voter; both are gone from the membership.
    n1.leave("n3").await.unwrap();
    n1.leave("n2").await.unwrap();
    let status = n1.cluster_status();
    let names: Vec<&str> = status
        .members
        .iter()
        .map(|m| m.member.node_id.as_str())
        .collect();
    assert_eq!(names, ["n1"], "{status:?}");
    // The cluster of one still commits.
    n1.propose(Input::Pause {
        at: n1.now(),
        timer: "t".to_string(),
    })
    .await
    .unwrap();
    for node in [n1, n2, n3] {
        node.shutdown().await.unwrap();
    }
}

/// A node with its HTTP API served, as `kron server start` runs it.
struct Served {
    node: Arc<Node>,
    api: Arc<Api<Node>>,
    http: String,
}

async fn served(dir: &std::path::Path, name: &str, leader: Option<&str>, raft_ip: &str) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap().to_string();
    let node = Node::start(NodeConfig {
        http_addr: http.clone(),
        raft_addr: format!("{raft_ip}:0"),
        ..config(dir, name, leader)
    })
    .await
    .unwrap();
    let node = Arc::new(node);
    let api = Api::open(
        node.clone(),
        ServeConfig::new(dir, Some(TOKEN.to_string())).unwrap(),
    )
    .unwrap();
    tokio::spawn(serve(api.clone(), listener));
    Served { node, api, http }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_reports_a_skewed_clock() {
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let n1 = served(dirs[0].path(), "n1", None, "127.0.0.1").await;
    leader_of(&n1.node).await;
    let n2 = served(dirs[1].path(), "n2", Some("n1"), "127.0.0.1").await;
    n1.node.join(n2.node.member()).await.unwrap();
    n2.node.set_test_clock_offset(5_000);

    wait_until("n2's offset measured", || {
        member(&n1.node.cluster_status(), "n2").clock_skewed == Some(true)
    })
    .await;
    let status = n1.node.cluster_status();
    let offset = member(&status, "n2").clock_offset_ms.unwrap();
    assert!((4_900..=5_100).contains(&offset), "{offset}");
    assert_eq!(member(&status, "n1").clock_offset_ms, Some(0));
    assert_eq!(member(&status, "n1").clock_skewed, Some(false));

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let get = |addr: &str, path: &str| {
        client
            .get(format!("http://{addr}{path}"))
            .bearer_auth(TOKEN)
            .send()
    };
    let answer: serde_json::Value = get(&n1.http, "/v1/cluster/status")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["clock_skewed"], true, "{answer}");
    assert!(answer.get("note").is_none(), "{answer}");
    let metrics = get(&n1.http, "/metrics")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("kron_cluster_clock_offset_seconds{node=\"n2\"}"))
        .unwrap_or_else(|| panic!("no offset gauge in {metrics}"));
    let seconds: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((4.9..=5.1).contains(&seconds), "{line}");

    // The follower says who measures, and that its reads may lag.
    let answer = get(&n2.http, "/v1/cluster/status").await.unwrap();
    assert_eq!(
        answer
            .headers()
            .get("x-kron-follower-read")
            .map(|v| v.to_str().unwrap()),
        Some("may-lag")
    );
    let answer: serde_json::Value = answer.json().await.unwrap();
    assert!(
        answer["note"].as_str().unwrap().contains("leader"),
        "{answer}"
    );
    assert_eq!(
        answer["members"][0]["clock_offset_ms"],
        serde_json::Value::Null
    );

    for s in [n1, n2] {
        s.api.shutdown().trigger();
        s.node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_connections_leave_from_the_nodes_own_address() {
    let dir = tempfile::tempdir().unwrap();
    let n1 = Node::start(NodeConfig {
        raft_addr: "127.0.0.2:0".to_string(),
        ..config(dir.path(), "n1", None)
    })
    .await
    .unwrap();
    leader_of(&n1).await;
    // A peer that only notes where connections come from.
    let peer = tokio::net::TcpListener::bind("127.0.0.3:0").await.unwrap();
    let peer_addr = peer.local_addr().unwrap().to_string();
    let mut joining = n1.member();
    joining.node_id = "n9".to_string();
    joining.raft_addr = peer_addr;
    joining.voter = false;
    let join = tokio::spawn({
        let n1 = Arc::new(n1);
        let joined = n1.clone();
        async move {
            let _ = tokio::time::timeout(Duration::from_secs(3), joined.join(joining)).await;
            n1
        }
    });
    let (_stream, from) = tokio::time::timeout(Duration::from_secs(5), peer.accept())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(from.ip().to_string(), "127.0.0.2");
    drop(peer);
    let n1 = join.await.unwrap();
    n1.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_raft_listener_admits_raft_tokens_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kron.tokens.json"),
        r#"{"tokens": [{"name": "peer", "token": "raft-secret", "role": "raft"},
                       {"name": "ops", "token": "reader-secret", "role": "reader"}]}"#,
    )
    .unwrap();
    let node = Node::start(config(dir.path(), "n1", None)).await.unwrap();
    leader_of(&node).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let vote = serde_json::json!({"vote": {"leader_id": {"term": 1, "node_id": 1}, "committed": false}, "last_log_id": null});
    let call = |token: &'static str| {
        client
            .post(format!("http://{}/raft/vote", node.raft_addr()))
            .bearer_auth(token)
            .json(&vote)
            .send()
    };
    for (token, status) in [
        ("raft-secret", 200),
        (TOKEN, 200),
        ("reader-secret", 403),
        ("nobody", 401),
    ] {
        let answer = call(token).await.unwrap();
        assert_eq!(answer.status(), status, "{token}");
    }
    node.shutdown().await.unwrap();
}

/// Starts a node on `dir` after `damage` was done to `file` in it: it must refuse, naming the
/// file.
async fn refuses_damaged(file: &str, damage: fn(&std::path::Path)) {
    let dir = tempfile::tempdir().unwrap();
    stopped_with_one_timer(dir.path(), false).await;
    let path = dir.path().join(file);
    damage(&path);
    let refused = Node::start(config(dir.path(), "n1", None)).await;
    let Err(error) = refused else {
        panic!("a node started on a damaged {file}");
    };
    let message = error.to_string();
    assert!(message.contains(file), "{file}: {message}");
}

fn garbage(path: &std::path::Path) {
    let len = std::fs::metadata(path).unwrap().len() as usize;
    let bytes: Vec<u8> = (0..len.max(4096)).map(|i| (i * 7 + 13) as u8).collect();
    std::fs::write(path, bytes).unwrap();
    let _ = std::fs::remove_file(path.with_extension("db-wal"));
    let _ = std::fs::remove_file(path.with_extension("db-shm"));
}

fn truncated(path: &std::path::Path) {
    let len = std::fs::metadata(path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_len(len / 2).unwrap();
    let _ = std::fs::remove_file(path.with_extension("db-wal"));
    let _ = std::fs::remove_file(path.with_extension("db-shm"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_storage_is_refused_naming_the_file() {
    refuses_damaged("raft.db", garbage).await;
    refuses_damaged("kron.db", garbage).await;
    refuses_damaged("raft.db", truncated).await;
    refuses_damaged("kron.db", truncated).await;
}

/// A node on `dir` with one timer (and a Raft snapshot of it when `snapshot`), stopped and its
/// directory released; answers the engine's snapshot bytes.
async fn stopped_with_one_timer(dir: &std::path::Path, snapshot: bool) -> Vec<u8> {
    let node = Node::start(config(dir, "n1", None)).await.unwrap();
    leader_of(&node).await;
    node.propose(Input::Register {
        at: node.now(),
        def: task_timer("t", ScheduleSpec::Every { ms: 3_600_000 }),
    })
    .await
    .unwrap();
    if snapshot {
        snapshot_now(&node).await;
    }
    let engine = node.read(|e| e.snapshot()).await;
    node.shutdown().await.unwrap();
    drop(node);
    // Raft's state machine task lets go of the files just after shutdown: callers damage them
    // after that, or its last checkpoint would write over the damage.
    wait_until("the directory released", || !kron_store::is_locked(dir)).await;
    engine
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_has_a_file_of_its_own_written_whole() {
    let dir = tempfile::tempdir().unwrap();
    let engine = stopped_with_one_timer(dir.path(), true).await;
    let file = dir.path().join("raft.snapshot");
    let bytes = std::fs::read(&file).unwrap();
    assert!(!bytes.is_empty());
    assert!(!dir.path().join("raft.snapshot.tmp").exists());
    let raft_db = dir.path().join("raft.db");
    {
        let mut log = kron_store::raft_log::RaftLog::open(&raft_db).unwrap();
        assert_eq!(log.get("snapshot").unwrap(), None);
        // As a build that kept the snapshot inside raft.db left it: moved to its file at start.
        log.put("snapshot", &bytes).unwrap();
    }
    std::fs::remove_file(&file).unwrap();
    let node = Node::start(config(dir.path(), "n1", None)).await.unwrap();
    leader_of(&node).await;
    assert_eq!(node.read(|e| e.snapshot()).await, engine);
    node.shutdown().await.unwrap();
    drop(node);
    wait_until("the directory released", || {
        !kron_store::is_locked(dir.path())
    })
    .await;
    assert_eq!(std::fs::read(&file).unwrap(), bytes);
    let log = kron_store::raft_log::RaftLog::open(&raft_db).unwrap();
    assert_eq!(log.get("snapshot").unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_or_orphaned_snapshot_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    stopped_with_one_timer(dir.path(), true).await;
    let file = dir.path().join("raft.snapshot");
    let mut bytes = std::fs::read(&file).unwrap();
    let half = bytes.len() / 2;
    bytes.truncate(half);
    std::fs::write(&file, &bytes).unwrap();
    let Err(error) = Node::start(config(dir.path(), "n1", None)).await else {
        panic!("a node started on a truncated raft.snapshot");
    };
    let message = error.to_string();
    assert!(message.contains("raft.snapshot"), "{message}");

    // A snapshot without the log it belongs to (raft.db and kron.db gone): not a fresh node.
    let dir = tempfile::tempdir().unwrap();
    stopped_with_one_timer(dir.path(), true).await;
    for name in ["raft.db", "kron.db"] {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.path().join(format!("{name}{suffix}")));
        }
    }
    let Err(error) = Node::start(config(dir.path(), "n1", None)).await else {
        panic!("a node started on a snapshot without its log");
    };
    let message = error.to_string();
    assert!(
        message.contains("raft.db") && message.contains("raft.snapshot"),
        "{message}"
    );
}

/// Failover time, in process: the leader of three stops without a word (as SIGKILL leaves
/// it), and the clock runs until another node has committed a write. Prints p50/p99; a
/// measurement, not a gate (`cargo test -p kron-server --test raft_node -- --ignored failover`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run it on purpose"]
async fn failover_time() {
    let rounds: usize = std::env::var("KRON_FAILOVER_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let mut times = Vec::new();
    for _ in 0..rounds {
        let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let n1 = Node::start(config(dirs[0].path(), "n1", None))
            .await
            .unwrap();
        leader_of(&n1).await;
        let n2 = Node::start(config(dirs[1].path(), "n2", Some("n1")))
            .await
            .unwrap();
        let n3 = Node::start(config(dirs[2].path(), "n3", Some("n1")))
            .await
            .unwrap();
        n1.join(n2.member()).await.unwrap();
        n1.join(n3.member()).await.unwrap();
        n1.propose(Input::Register {
            at: n1.now(),
            def: task_timer("t", ScheduleSpec::Every { ms: 3_600_000 }),
        })
        .await
        .unwrap();
        // Let a few heartbeats pass, as in a steady cluster.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = std::time::Instant::now();
        n1.shutdown().await.unwrap();
        drop(n1);
        loop {
            let mut committed = false;
            for node in [&n2, &n3] {
                let write = node.propose(Input::Pause {
                    at: node.now(),
                    timer: "t".to_string(),
                });
                if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(500), write).await {
                    committed = true;
                }
            }
            if committed {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "no new leader");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        times.push(started.elapsed());
        for node in [n2, n3] {
            node.shutdown().await.unwrap();
        }
    }
    times.sort();
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    eprintln!(
        "failover over {rounds} rounds: p50 {:?}, p99 {:?}, max {:?}",
        at(0.5),
        at(0.99),
        times[times.len() - 1]
    );
}
