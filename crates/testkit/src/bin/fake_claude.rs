//! A fake `claude` CLI for tests: speaks Claude Code's headless stream-json protocol
//! (`system`/`init`, `assistant`, `result` lines) and, like the real one, starts the MCP
//! servers of `--mcp-config` over stdio (JSON-RPC: initialize, tools/list, tools/call) and
//! calls the NanoClaw `send_message` tool. Its argv is appended to `$FAKE_CLAUDE_LOG`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

fn arg_after(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
}

struct Mcp {
    child: std::process::Child,
    out: BufReader<std::process::ChildStdout>,
    next: u64,
}

impl Mcp {
    fn start(config: &str) -> Result<Self, String> {
        let cfg: Value = match serde_json::from_str(config) {
            Ok(v) => v,
            Err(_) => {
                serde_json::from_str(&std::fs::read_to_string(config).map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?
            }
        };
        let server = &cfg["mcpServers"]["nanoclaw"];
        let cmd = server["command"]
            .as_str()
            .ok_or("no nanoclaw MCP server in --mcp-config")?;
        let args: Vec<String> = server["args"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect();
        let mut child = Command::new(cmd)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| e.to_string())?;
        let out = BufReader::new(child.stdout.take().unwrap());
        Ok(Self {
            child,
            out,
            next: 1,
        })
    }
    fn send(&mut self, v: Value) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{v}").unwrap();
        stdin.flush().unwrap();
    }
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let mut line = String::new();
            if self.out.read_line(&mut line).unwrap_or(0) == 0 {
                return json!({"error": "MCP server closed"});
            }
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if v["id"] == id {
                return v;
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Ok(log) = std::env::var("FAKE_CLAUDE_LOG") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = writeln!(f, "{}", json!(args));
        }
    }
    if args.iter().any(|a| a == "--version") {
        println!("0.0.0 (fake Claude Code)");
        return;
    }
    let mut prompt = String::new();
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            if v["type"] == "user" {
                prompt = v["message"]["content"][0]["text"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
            }
        }
    }
    let resumed = arg_after(&args, "--resume");
    // Like the real CLI asked to resume a conversation it has no transcript of.
    if let Some(r) = resumed.as_deref().filter(|r| r.starts_with("missing-")) {
        eprintln!("No conversation found with session ID: {r}");
        std::process::exit(1);
    }
    // Like the real CLI refusing to start (e.g. as root): a reason on stderr, no result.
    if prompt.contains("refuse-please") {
        eprintln!("--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons");
        eprintln!();
        std::process::exit(1);
    }
    let sid = resumed
        .clone()
        .unwrap_or_else(|| format!("fake-session-{}", std::process::id()));
    let print = |v: Value| {
        println!("{v}");
        std::io::stdout().flush().unwrap();
    };
    print(
        json!({"type": "system", "subtype": "init", "session_id": sid, "model": "claude-fake",
        "permissionMode": "bypassPermissions", "mcp_servers": [{"name": "nanoclaw", "status": "connected"}]}),
    );
    if prompt.contains("fail-please") {
        print(
            json!({"type": "result", "subtype": "error_during_execution", "is_error": true, "result": "it broke", "session_id": sid}),
        );
        return;
    }
    let (tools, said) = match arg_after(&args, "--mcp-config").map(|c| Mcp::start(&c)) {
        Some(Ok(mut mcp)) => {
            let init = mcp.request(
                "initialize",
                json!({"protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "fake-claude", "version": "0.0.0"}}),
            );
            assert!(init.get("result").is_some(), "initialize failed: {init}");
            mcp.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
            let list = mcp.request("tools/list", json!({}));
            let n = list["result"]["tools"].as_array().map_or(0, Vec::len);
            print(
                json!({"type": "assistant", "session_id": sid, "message": {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "mcp__nanoclaw__send_message", "input": {"text": "working on it"}}]}}),
            );
            let call = mcp.request(
                "tools/call",
                json!({"name": "send_message", "arguments": {"text": "working on it"}}),
            );
            let text = call["result"]["content"][0]["text"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let _ = mcp.child.kill();
            (n, text)
        }
        Some(Err(e)) => (0, format!("mcp error: {e}")),
        None => (0, "no mcp".into()),
    };
    let answer = if prompt.contains("whoami") {
        // What the runner told Claude Code: the name in the system prompt, the timezone of the
        // messages block, whether the system prompt holds the words after "whoami " (e.g. a
        // line of the agent's memory), and the conversation resumed.
        let system = arg_after(&args, "--append-system-prompt").unwrap_or_default();
        let name = system
            .split("You are ")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .unwrap_or("?");
        let tz = prompt
            .split("timezone=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("?");
        let needle = prompt
            .split("whoami ")
            .nth(1)
            .and_then(|r| r.split('<').next())
            .map(str::trim)
            .unwrap_or("");
        format!(
            "whoami: name={name} tz={tz} knows={} resume={}",
            !needle.is_empty() && system.contains(needle),
            resumed.as_deref().unwrap_or("none")
        )
    } else {
        format!(
            "claude done (resumed={}, tools={tools}, mcp={said})",
            resumed.is_some()
        )
    };
    print(
        json!({"type": "assistant", "session_id": sid, "message": {"role": "assistant", "content": [{"type": "text", "text": answer}]}}),
    );
    print(
        json!({"type": "result", "subtype": "success", "is_error": false, "result": answer, "session_id": sid,
        "num_turns": 2, "total_cost_usd": 0.0}),
    );
}
