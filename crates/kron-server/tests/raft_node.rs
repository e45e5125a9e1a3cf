//! A server node end to end on loopback: bootstrap, writes through Raft, restart, a cluster.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use kron_core::engine::{ClaimRequest, Outcome};
use kron_core::event::EventKind;
use kron_core::input::{Input, Output, Rejected};
use kron_core::schedule::ScheduleSpec;
use kron_core::timer::{Catchup, Overlap, TaskTarget, TimerDef};
use kron_server::backend::{Backend, EventPage, WriteError};
use kron_server::node::{Node, NodeConfig};
use kron_store::EventFilter;

const TOKEN: &str = "cluster-secret";

fn config(dir: &std::path::Path, name: &str, leader: Option<&str>) -> NodeConfig {
    NodeConfig {
        data_dir: dir.to_path_buf(),
        node_name: name.to_string(),
        http_addr: format!("127.0.0.1:1{}", name.trim_start_matches('n')),
        raft_addr: "127.0.0.1:0".to_string(),
        cluster_token: TOKEN.to_string(),
        leader_id: leader.map(str::to_string),
    }
}

fn task_timer(id: &str, schedule: ScheduleSpec) -> TimerDef {
    TimerDef {
        id: id.into(),
        schedule,
        timezone: "UTC".into(),
        max_attempts: 3,
        overlap: Overlap::Delay,
        catchup: Catchup::Once,
        jitter_ms: 0,
        fn_name: "email".into(),
        task: Some(Arc::new(TaskTarget {
            task: "email".into(),
            payload: "{\"to\":\"a@example.com\"}".into(),
            tenant: None,
        })),
    }
}

async fn leader_of(node: &Node) {
    let leader = node.wait_for_leader(Duration::from_secs(5)).await;
    assert!(leader.is_some(), "no leader elected");
}

/// Registers `t1` (due at once) and `t2` (hourly), ticks, claims `t1`'s run and completes it.
async fn one_run(node: &Node) {
    let now = node.now();
    let out = node
        .propose(Input::Register {
            at: now,
            def: task_timer("t1", ScheduleSpec::After { ms: 1 }),
        })
        .await
        .unwrap();
    assert!(matches!(out, Output::Registered { .. }), "{out:?}");
    node.propose(Input::Register {
        at: now,
        def: task_timer("t2", ScheduleSpec::Every { ms: 3_600_000 }),
    })
    .await
    .unwrap();
    node.propose(Input::Tick {
        at: now + 10,
        capacity: 0,
        batch: 100,
    })
    .await
    .unwrap();
    let token = node.read(|e| e.last_token()).await + 1;
    let claimed = node
        .propose(Input::Claim {
            at: now + 20,
            request: ClaimRequest {
                worker: "w1".to_string(),
                tasks: vec!["email".to_string()],
                tenant: None,
                limit: 10,
                lease_until: now + 30_000,
                token,
            },
        })
        .await
        .unwrap();
    let Output::Claimed { runs } = claimed else {
        panic!("not a claim: {claimed:?}");
    };
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].timer_id, "t1");
    assert_eq!(runs[0].payload, "{\"to\":\"a@example.com\"}");
    let run = runs[0].run_id.clone();
    node.propose(Input::Complete {
        at: now + 30,
        run: run.clone(),
        token,
        outcome: Outcome::Succeeded { duration_ms: 5 },
    })
    .await
    .unwrap();
    // The same report again: refused when applied (the run is no longer leased).
    let again = node
        .propose(Input::Complete {
            at: now + 40,
            run,
            token,
            outcome: Outcome::Succeeded { duration_ms: 5 },
        })
        .await;
    assert!(
        matches!(again, Err(WriteError::Rejected(Rejected::Lease(_)))),
        "{again:?}"
    );
}

/// Has the node build a Raft snapshot and waits until it has one.
async fn snapshot_now(node: &Node) {
    node.raft().trigger().snapshot().await.unwrap();
    let mut metrics = node.raft().metrics();
    tokio::time::timeout(
        Duration::from_secs(10),
        metrics.wait_for(|m| m.snapshot.is_some()),
    )
    .await
    .unwrap()
    .unwrap();
}

fn kinds(events: &[kron_core::event::StoredEvent]) -> Vec<EventKind> {
    events.iter().map(|e| e.event.kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_bootstraps_and_applies_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(config(dir.path(), "n1", None)).await.unwrap();
    leader_of(&node).await;
    let status = node.cluster_status();
    assert_eq!(status.role, "leader");
    assert_eq!(status.leader_id.as_deref(), Some("n1"));
    assert_eq!(status.leader_http.as_deref(), Some("127.0.0.1:11"));
    assert_eq!(status.members.len(), 1);

    one_run(&node).await;
    let view = node.read(|e| e.view("t1")).await.unwrap();
    assert_eq!(view.record.run_count, 1);
    let history = node.history("t1", 100).await.unwrap();
    let kinds = kinds(&history);
    assert!(kinds.contains(&EventKind::RunDue), "{kinds:?}");
    assert!(kinds.contains(&EventKind::RunStarted), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&EventKind::RunSucceeded), "{kinds:?}");
    let status = node.cluster_status();
    assert!(status.applied_index >= 6, "{status:?}");
    assert!(*node.applied().borrow() >= 6);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(config(dir.path(), "n1", None)).await.unwrap();
    leader_of(&node).await;
    one_run(&node).await;
    let snapshot = node.read(|e| e.snapshot()).await;
    let history = node.history("t1", 100).await.unwrap();
    node.shutdown().await.unwrap();
    drop(node);

    // What `kron job list/history` read: the embedded mode's tables.
    {
        let reader = kron_store::Reader::open(dir.path()).unwrap();
        let timers: Vec<String> = reader
            .timers()
            .unwrap()
            .iter()
            .map(|t| t.def.id.to_string())
            .collect();
        assert_eq!(timers, ["t1", "t2"]);
        assert_eq!(reader.history("t1", 100).unwrap(), history);
    }

    let node = Node::start(config(dir.path(), "n1", None)).await.unwrap();
    leader_of(&node).await;
    assert_eq!(node.read(|e| e.snapshot()).await, snapshot);
    // Re-applied entries wrote nothing twice.
    assert_eq!(node.history("t1", 100).await.unwrap(), history);

    // Compaction: a Raft snapshot, more writes, a restart from the snapshot plus the log.
    snapshot_now(&node).await;
    node.propose(Input::Pause {
        at: node.now(),
        timer: "t2".to_string(),
    })
    .await
    .unwrap();
    let snapshot = node.read(|e| e.snapshot()).await;
    let history = node.history("t2", 100).await.unwrap();
    node.shutdown().await.unwrap();
    drop(node);
    let node = Node::start(config(dir.path(), "n1", None)).await.unwrap();
    leader_of(&node).await;
    assert_eq!(node.read(|e| e.snapshot()).await, snapshot);
    assert_eq!(node.history("t2", 100).await.unwrap(), history);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_a_leader_and_replicate() {
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
    let status = n1.cluster_status();
    assert_eq!(status.members.len(), 3, "{status:?}");
    assert!(status.members.iter().all(|m| m.member.voter), "{status:?}");

    let now = n1.now();
    n1.propose(Input::Register {
        at: now,
        def: task_timer("shared", ScheduleSpec::Every { ms: 3_600_000 }),
    })
    .await
    .unwrap();
    let target = *n1.applied().borrow();
    for follower in [&n2, &n3] {
        let mut applied = follower.applied();
        tokio::time::timeout(Duration::from_secs(5), applied.wait_for(|i| *i >= target))
            .await
            .unwrap()
            .unwrap();
        assert!(follower.read(|e| e.contains("shared")).await);
        assert_eq!(follower.cluster_status().leader_id.as_deref(), Some("n1"));
        // Writes go to the leader.
        let refused = follower
            .propose(Input::Pause {
                at: now,
                timer: "shared".to_string(),
            })
            .await;
        let Err(WriteError::NotLeader {
            leader: Some(leader),
        }) = refused
        else {
            panic!("{refused:?}");
        };
        assert_eq!(leader.id, "n1");
        assert_eq!(leader.http.as_deref(), Some("127.0.0.1:11"));
    }
    assert_eq!(
        n2.read(|e| e.snapshot()).await,
        n1.read(|e| e.snapshot()).await
    );
    for node in [n1, n2, n3] {
        node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leaders_clock_ticks_and_expires_leases() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(config(dir.path(), "n1", None)).await.unwrap();
    leader_of(&node).await;
    let now = node.now();
    node.propose(Input::Register {
        at: now,
        def: task_timer("soon", ScheduleSpec::After { ms: 100 }),
    })
    .await
    .unwrap();
    // No tick proposed here: the leader's clock makes the run due and parks it.
    let mut applied = node.applied();
    let mut claimed = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while claimed.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run never became claimable"
        );
        let token = node.read(|e| e.last_token()).await + 1;
        let at = node.now();
        let out = node
            .propose(Input::Claim {
                at,
                request: ClaimRequest {
                    worker: "w1".to_string(),
                    tasks: vec!["email".to_string()],
                    tenant: None,
                    limit: 1,
                    lease_until: at + 200,
                    token,
                },
            })
            .await
            .unwrap();
        if let Output::Claimed { runs } = out {
            claimed = runs;
        }
        if claimed.is_empty() {
            let _ = tokio::time::timeout(Duration::from_millis(200), applied.changed()).await;
        }
    }
    // Nobody reports: the clock expires the lease and the run is retried.
    let expired = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let history = node.history("soon", 100).await.unwrap();
            if kinds(&history).contains(&EventKind::RunInterrupted) {
                return history;
            }
            let _ = applied.changed().await;
        }
    })
    .await
    .unwrap();
    let interrupted = expired.iter().any(|e| {
        e.event.kind == EventKind::RunInterrupted
            && e.event.run_id.as_ref() == Some(&claimed[0].run_id)
    });
    assert!(interrupted, "{:?}", kinds(&expired));
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joining_after_compaction_installs_a_snapshot() {
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let n1 = Node::start(config(dirs[0].path(), "n1", None))
        .await
        .unwrap();
    leader_of(&n1).await;
    one_run(&n1).await;
    // Compact: snapshot, then drop every entry it covers.
    n1.raft().trigger().snapshot().await.unwrap();
    let mut metrics = n1.raft().metrics();
    let snapshot = tokio::time::timeout(
        Duration::from_secs(5),
        metrics.wait_for(|m| m.snapshot.is_some()),
    )
    .await
    .unwrap()
    .unwrap()
    .snapshot
    .unwrap();
    n1.raft().trigger().purge_log(snapshot.index).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        metrics.wait_for(|m| m.purged.is_some_and(|p| p.index >= snapshot.index)),
    )
    .await
    .unwrap()
    .unwrap();

    let n2 = Node::start(config(dirs[1].path(), "n2", Some("n1")))
        .await
        .unwrap();
    n1.join(n2.member()).await.unwrap();
    let target = *n1.applied().borrow();
    let mut applied = n2.applied();
    tokio::time::timeout(Duration::from_secs(5), applied.wait_for(|i| *i >= target))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        n2.read(|e| e.snapshot()).await,
        n1.read(|e| e.snapshot()).await
    );
    n2.shutdown().await.unwrap();
    drop(n2);
    // The installed state is in the follower's store too.
    let reader = kron_store::Reader::open(dirs[1].path()).unwrap();
    let timers: Vec<String> = reader
        .timers()
        .unwrap()
        .iter()
        .map(|t| t.def.id.to_string())
        .collect();
    assert_eq!(timers, ["t1", "t2"]);
    // And the history of the entries the snapshot stood for: the same events, numbered alike.
    let all = kron_store::EventFilter::default();
    let followers = reader.events(&all).unwrap();
    let leaders = kron_store::Reader::open(dirs[0].path())
        .unwrap()
        .events(&all)
        .unwrap();
    assert!(!followers.is_empty());
    assert_eq!(followers, leaders);
    n1.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_takes_over_when_the_leader_stops() {
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
        def: task_timer("kept", ScheduleSpec::Every { ms: 3_600_000 }),
    })
    .await
    .unwrap();
    n1.shutdown().await.unwrap();
    drop(n1);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let leader = loop {
        assert!(tokio::time::Instant::now() < deadline, "no new leader");
        if n2.cluster_status().role == "leader" {
            break &n2;
        }
        if n3.cluster_status().role == "leader" {
            break &n3;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(leader.read(|e| e.contains("kept")).await);
    leader
        .propose(Input::Pause {
            at: leader.now(),
            timer: "kept".to_string(),
        })
        .await
        .unwrap();
    for node in [n2, n3] {
        node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_raft_listener_wants_the_cluster_token() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(config(dir.path(), "n1", None)).await.unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://{}", node.raft_addr());
    let vote = serde_json::json!({"vote": {"leader_id": {"term": 1, "node_id": 1}, "committed": false}, "last_log_id": null});
    for token in [None, Some("wrong")] {
        let mut request = client.post(format!("{base}/raft/vote")).json(&vote);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status(), 401);
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body, serde_json::json!({"error": "unauthorized"}));
    }
    // Nothing else is served there.
    let answer = client
        .get(format!("{base}/v1/timers"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_runtimes_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store =
            kron_store::Store::open(dir.path(), kron_store::Durability::Normal).unwrap();
        let mut engine = kron_core::engine::Engine::new(Default::default(), 1);
        engine
            .apply(Input::Register {
                at: 1_000,
                def: task_timer("local", ScheduleSpec::Every { ms: 60_000 }),
            })
            .unwrap();
        store.commit(&engine.take_changes()).unwrap();
    }
    let refused = Node::start(config(dir.path(), "n1", None)).await;
    let Err(error) = refused else {
        panic!("an embedded directory was adopted");
    };
    assert!(error.to_string().contains("embedded runtime"), "{error}");
}

/// Membership, cluster status, clocks, Raft tokens and damaged storage.
#[path = "raft_node/cluster.rs"]
mod cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_queried_over_every_timer_newest_first_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(config(dir.path(), "n1", None)).await.unwrap();
    leader_of(&node).await;
    let now = node.now();
    let inputs: Vec<Input> = (0..250)
        .map(|i| Input::Register {
            at: now + i,
            def: task_timer(&format!("t{i:03}"), ScheduleSpec::Every { ms: 3_600_000 }),
        })
        .collect();
    let answers = node.propose_many(inputs).await.unwrap();
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");

    let created = |timer_ids: Option<Vec<String>>, limit: usize| EventFilter {
        kinds: vec![EventKind::TimerCreated],
        since: Some(now),
        timer_ids,
        limit: Some(limit),
        ..EventFilter::default()
    };
    let page = node.events(created(None, 20)).await.unwrap();
    assert_eq!(page.total, 250);
    let ids: Vec<&str> = page
        .events
        .iter()
        .map(|e| e.event.timer_id.as_str())
        .collect();
    // The newest 20, oldest first.
    let expected: Vec<String> = (230..250).map(|i| format!("t{i:03}")).collect();
    assert_eq!(ids, expected);

    let some = Some(vec![
        "t007".to_string(),
        "t123".to_string(),
        "gone".to_string(),
    ]);
    let page = node.events(created(some, 1)).await.unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].event.timer_id, "t123");
    let none = node.events(created(Some(Vec::new()), 10)).await.unwrap();
    assert_eq!(none, EventPage::default());
    node.shutdown().await.unwrap();
}

fn file_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Registers `count` hourly timers `{prefix}{i}`, one proposal each.
async fn register_timers(node: &Node, prefix: &str, count: usize) {
    for i in 0..count {
        node.propose(Input::Register {
            at: node.now(),
            def: task_timer(
                &format!("{prefix}{i}"),
                ScheduleSpec::Every { ms: 3_600_000 },
            ),
        })
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_ahead_logs_are_checkpointed_off_the_write_path_and_start_over() {
    let dir = tempfile::tempdir().unwrap();
    let kron_wal = dir.path().join("kron.db-wal");
    let raft_wal = dir.path().join("raft.db-wal");
    let node = Node::start(config(dir.path(), "n1", None)).await.unwrap();
    leader_of(&node).await;
    register_timers(&node, "big", 300).await;
    // The checkpoint thread copies both logs into their databases (every 200 ms); the next
    // writes then start each log over instead of appending to it.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (kron_high, raft_high) = (file_len(&kron_wal), file_len(&raft_wal));
    assert!(kron_high > 0 && raft_high > 0, "{kron_high} {raft_high}");
    for round in 0..3 {
        register_timers(&node, &format!("small{round}-"), 30).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        // SQLite's own checkpoints (past 4,000 and 1,000 pages) would have let both grow.
        assert_eq!(file_len(&kron_wal), kron_high, "kron.db-wal, round {round}");
        assert_eq!(file_len(&raft_wal), raft_high, "raft.db-wal, round {round}");
    }
    node.shutdown().await.unwrap();
    drop(node);
    // The checkpoint connections closed before `kron.db`, which could then leave WAL mode: the
    // stopped directory is one self-contained database file.
    assert!(!kron_wal.exists());
    let reader = kron_store::Reader::open(dir.path()).unwrap();
    assert_eq!(reader.timers().unwrap().len(), 390);
}
