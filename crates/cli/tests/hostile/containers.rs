//! The container as a boundary (Docker only: the process runtime has no container): one agent
//! cannot open a connection to another agent's container, a fork storm of orphans cannot use
//! up the pids limit (the engine's init reaps them), and an agent group without internet still
//! reaches the credential proxy.

use std::io::Read;
use std::time::Duration;

use nanoclaw_testkit::docker::{docker, engine, slim_image};
use nanoclaw_testkit::fake_model::{FakeModel, Reply};
use nanoclaw_testkit::{eventually, TestHome};
use serde_json::{json, Value};

use crate::support::{chat, home, Rt};

fn docker_ready() -> bool {
    if !engine() {
        return false;
    }
    slim_image();
    true
}

fn inspect(kind: &str, id: &str) -> Value {
    let o = docker(&[kind, "inspect", id]);
    serde_json::from_slice::<Vec<Value>>(&o.stdout)
        .unwrap_or_default()
        .into_iter()
        .next()
        .unwrap_or(Value::Null)
}

/// The running container of the (only) session of an agent group folder.
fn container_of(home: &TestHome, folder: &str) -> String {
    let sid: String = home
        .central()
        .query_row(
            "SELECT s.id FROM sessions s JOIN agent_groups g ON g.id = s.agent_group_id
             WHERE g.folder = ?1",
            [folder],
            |r| r.get(0),
        )
        .unwrap();
    let o = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=nanoclaw.session={sid}"),
    ]);
    let id = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(
        !id.is_empty() && !id.contains('\n'),
        "one container: {id:?}"
    );
    id
}

/// (network name, address) of a container's one network.
fn network_of(container: &str) -> (String, String) {
    let nets = inspect("container", container)["NetworkSettings"]["Networks"].clone();
    let (name, n) = nets
        .as_object()
        .and_then(|o| o.iter().next())
        .map(|(k, v)| (k.clone(), v.clone()))
        .expect("a network");
    (
        name,
        n["IPAddress"].as_str().unwrap_or_default().to_string(),
    )
}

fn new_group(home: &TestHome, folder: &str) -> String {
    let o = home.run(&[
        "ctl", "groups", "create", "--name", folder, "--folder", folder,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    home.central()
        .query_row(
            "SELECT id FROM agent_groups WHERE folder = ?1",
            [folder],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn an_agent_cannot_connect_to_another_agents_container() {
    if !docker_ready() {
        return;
    }
    let fake = FakeModel::start();
    let home = home(Rt::Docker, &fake);
    let _host = home.start_host(&[]);
    new_group(&home, "other");
    fake.push([Reply::text("other here")]);
    let o = home.run(&["chat", "--agent", "other", "-m", "hi", "--timeout", "60"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "other here\n");
    // The other agent serves a marker on a port (it idles, so its container stays up).
    let victim = container_of(&home, "other");
    let (_, ip) = network_of(&victim);
    assert!(docker(&[
        "exec",
        "-d",
        &victim,
        "sh",
        "-c",
        "while true; do echo MARKER-OTHER | nc -l -p 7777; done",
    ])
    .status
    .success());
    // Positive control: the listener answers the host (host → container is not inter-container
    // traffic), so a silent connect below is the network's doing, not a missing listener.
    let served = eventually(Duration::from_secs(15), || {
        let mut s = std::net::TcpStream::connect_timeout(
            &format!("{ip}:7777").parse().unwrap(),
            Duration::from_secs(2),
        )
        .ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut got = String::new();
        let _ = s.read_to_string(&mut got);
        got.contains("MARKER-OTHER").then_some(())
    });
    assert!(
        served.is_some(),
        "the other container's listener never answered"
    );

    fake.push([
        Reply::tool(
            "bash",
            json!({"command": format!("nc -w 3 {ip} 7777 </dev/null; echo nc-exit=$?")}),
        ),
        Reply::text("tried"),
    ]);
    let (ok, out) = chat(&home, "connect to your neighbour");
    assert!(ok && out == "tried", "{out}");
    let reqs = fake.received();
    let result = reqs.last().unwrap().last_user_text();
    assert!(result.contains("nc-exit="), "the tool ran: {result}");
    assert!(
        !result.contains("MARKER-OTHER"),
        "one agent's container reached another's: {result}"
    );
}

#[test]
fn a_fork_storm_of_orphans_leaves_bash_working() {
    if !docker_ready() {
        return;
    }
    let fake = FakeModel::start();
    let home = home(Rt::Docker, &fake);
    let _host = home.start_host(&[]);
    // Each `( … &)` leaves an orphan that exits at once: without a reaping PID 1 every one
    // stays a zombie holding a pid, twice the default limit of 256 in all.
    fake.push([
        Reply::tool(
            "bash",
            json!({"command": "i=0; while [ $i -lt 500 ]; do (sleep 0 >/dev/null 2>&1 &); i=$((i+1)); done; echo storm-over"}),
        ),
        Reply::tool("bash", json!({"command": "echo still-$((6*7))"})),
        Reply::text("survived"),
    ]);
    let (_, out) = chat(&home, "fork away");
    let reqs = fake.received();
    assert_eq!(reqs.len(), 3, "the turn went on after the storm: {out}");
    let storm = reqs[1].last_user_text();
    assert!(storm.contains("storm-over"), "{storm}");
    // Zombies that nobody reaps fill the pids limit during the storm itself.
    assert!(
        !storm.contains("can't fork"),
        "zombies used up the pids limit: {}",
        storm.lines().take(3).collect::<Vec<_>>().join(" / ")
    );
    let after = reqs[2].last_user_text();
    assert!(
        after.contains("still-42"),
        "bash broken after the storm: {after}"
    );
    assert_eq!(out, "survived");
    let pid1 = docker(&["exec", &container_of(&home, "main"), "cat", "/proc/1/comm"]);
    assert_ne!(
        String::from_utf8_lossy(&pid1.stdout).trim(),
        "nanoclaw-agent",
        "the runner is PID 1"
    );
}

#[test]
fn a_group_without_internet_still_reaches_the_proxy() {
    if !docker_ready() {
        return;
    }
    let fake = FakeModel::start();
    let home = home(Rt::Docker, &fake);
    let _host = home.start_host(&[]);
    let offline = new_group(&home, "offline");
    let o = home.run(&[
        "ctl",
        "container-configs",
        "create",
        "--agent-group-id",
        &offline,
        "--limits",
        r#"{"network": "none"}"#,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    fake.push([Reply::text("online answer")]);
    assert_eq!(chat(&home, "hi"), (true, "online answer".into()));
    fake.push([Reply::text("offline answer")]);
    let o = home.run(&["chat", "--agent", "offline", "-m", "hi", "--timeout", "60"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "offline answer\n",
        "the model through the proxy from the internal network: {}",
        String::from_utf8_lossy(&o.stderr)
    );

    let (open_net, _) = network_of(&container_of(&home, "main"));
    let (closed_net, _) = network_of(&container_of(&home, "offline"));
    let open = inspect("network", &open_net);
    let closed = inspect("network", &closed_net);
    let icc = |n: &Value| n["Options"]["com.docker.network.bridge.enable_icc"].clone();
    assert_eq!(
        open["Internal"], false,
        "the default keeps internet: {open}"
    );
    assert_eq!(
        closed["Internal"], true,
        "network=none routes nowhere: {closed}"
    );
    assert_eq!((icc(&open), icc(&closed)), (json!("false"), json!("false")));
}
