//! The `nanoclaw ctl` command line, parsed into a [`Request`]. It lives beside the resource
//! descriptors it checks flags against (and so the fuzz targets reach it without the CLI
//! binary); printing results stays in the CLI.

use serde_json::{Map, Value};

use super::{crud, resources, CtlError, Request, Verb};

/// A parsed command line.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    /// Print this help and exit 0.
    Help(String),
    /// Run a request.
    Run(Box<Command>),
}

/// A request plus output options.
#[derive(Debug, PartialEq)]
pub struct Command {
    /// What to do.
    pub req: Request,
    /// Print JSON instead of text.
    pub json: bool,
}

fn usage() -> String {
    let mut s = String::from(
        "usage: nanoclaw ctl <resource> <verb> [<id>] [--field value…] [--json]\n\
         verbs: list [--field value…] [--limit N] | get <id> | create --field value… |\n\
         \x20      update <id> --field value… | delete <id>\n\
         Field flags are column names with dashes (--engage-mode pattern). Resources with a\n\
         composite key are addressed by their key fields (roles: --user-id --role [--agent-group-id]).\n\
         --clear FIELD sets an optional field to empty (NULL). `nanoclaw ctl <resource> help`\n\
         lists a resource's fields.\n\nresources:\n",
    );
    for r in resources::RESOURCES {
        s.push_str(&format!("  {:<18} {}\n", r.name, r.about));
    }
    s
}

fn is_help(s: &str) -> bool {
    matches!(s, "help" | "--help" | "-h")
}

/// Parses `<resource> <verb> [<id>] [--flag value | --flag=value]… [--json] [--limit N]
/// [--id ID] [--clear FIELD]`. Field names are checked against the resource.
pub fn parse(args: &[String]) -> Result<Parsed, CtlError> {
    let Some(first) = args.first() else {
        return Ok(Parsed::Help(usage()));
    };
    if is_help(first) {
        return Ok(Parsed::Help(usage()));
    }
    let res = super::resource(first)?;
    let Some(verb_s) = args.get(1) else {
        return Ok(Parsed::Help(res.help()));
    };
    if is_help(verb_s) {
        return Ok(Parsed::Help(res.help()));
    }
    let verb = super::verb(res, verb_s)?;
    let mut req = Request {
        resource: res.name.to_string(),
        verb: verb.name().to_string(),
        ..Default::default()
    };
    let mut json = false;
    let mut fields = Map::new();
    let mut it = args[2..].iter();
    while let Some(tok) = it.next() {
        if is_help(tok) {
            return Ok(Parsed::Help(res.help()));
        }
        let Some(flag) = tok.strip_prefix("--") else {
            if req.id.is_some() {
                return Err(CtlError::usage(format!(
                    "unexpected argument {tok:?}: {} {} takes at most one id (values go after --field)",
                    res.name,
                    verb.name()
                )));
            }
            req.id = Some(tok.clone());
            continue;
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        if name == "json" {
            if inline.is_some() {
                return Err(CtlError::usage("--json takes no value"));
            }
            json = true;
            continue;
        }
        let mut value = || -> Result<String, CtlError> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| CtlError::usage(format!("--{name} needs a value"))),
            }
        };
        match name {
            "" => return Err(CtlError::usage("unexpected argument \"--\"")),
            "limit" => {
                let v = value()?;
                let n = v
                    .parse::<i64>()
                    .map_err(|_| CtlError::usage(format!("--limit expects a number, got {v:?}")))?;
                if req.limit.replace(n).is_some() {
                    return Err(CtlError::usage("--limit given twice"));
                }
            }
            "id" if res.single_key().is_some() => {
                let v = value()?;
                if req.id.replace(v).is_some() {
                    return Err(CtlError::usage("two ids given: pass one"));
                }
            }
            "clear" => {
                let v = value()?;
                let col = crud::column(res, &v)?;
                if fields.insert(col.name.to_string(), Value::Null).is_some() {
                    return Err(CtlError::usage(format!("--{} given twice", col.flag())));
                }
            }
            _ => {
                let col = crud::column(res, name)?;
                let v = value()?;
                if fields
                    .insert(col.name.to_string(), Value::String(v))
                    .is_some()
                {
                    return Err(CtlError::usage(format!("--{} given twice", col.flag())));
                }
            }
        }
    }
    if verb == Verb::List {
        req.filters = fields;
    } else {
        req.fields = fields;
    }
    Ok(Parsed::Run(Box::new(Command { req, json })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }
    fn run_of(s: &str) -> Command {
        match parse(&args(s)).unwrap() {
            Parsed::Run(c) => *c,
            Parsed::Help(h) => panic!("help for {s}: {h}"),
        }
    }
    fn err_of(s: &str) -> String {
        parse(&args(s)).unwrap_err().to_string()
    }

    #[test]
    fn parses_fields_id_and_options() {
        let c = run_of("wirings create --messaging-group-id mg-1 --agent-group-id=ag-1 --engage-mode pattern --json");
        assert!(c.json);
        assert_eq!(c.req.resource, "wirings");
        assert_eq!(c.req.verb, "create");
        assert_eq!(
            Value::Object(c.req.fields),
            json!({"messaging_group_id": "mg-1", "agent_group_id": "ag-1", "engage_mode": "pattern"})
        );
        let c = run_of("groups update ag-1 --name New --clear agent-provider");
        assert_eq!(c.req.id.as_deref(), Some("ag-1"));
        assert_eq!(
            Value::Object(c.req.fields),
            json!({"name": "New", "agent_provider": null})
        );
        let c = run_of("groups get --id ag-2");
        assert_eq!(c.req.id.as_deref(), Some("ag-2"));
        // list flags are filters; aliases resolve to canonical names.
        let c = run_of("group ls --folder main --limit 3");
        assert_eq!(c.req.resource, "groups");
        assert_eq!(c.req.verb, "list");
        assert_eq!(c.req.limit, Some(3));
        assert_eq!(Value::Object(c.req.filters), json!({"folder": "main"}));
        assert!(c.req.fields.is_empty());
        // Composite keys are plain fields; values may start with a dash.
        let c = run_of("roles delete --user-id cli:local --role owner");
        assert_eq!(c.req.id, None);
        assert_eq!(
            Value::Object(c.req.fields),
            json!({"user_id": "cli:local", "role": "owner"})
        );
        let c = run_of("wirings update w-1 --priority -1");
        assert_eq!(c.req.fields["priority"], "-1");
    }

    #[test]
    fn the_request_line_is_the_documented_json() {
        let c = run_of("groups list --folder main --limit 2");
        let v: Value = serde_json::to_value(&c.req).unwrap();
        assert_eq!(
            v,
            json!({"resource": "groups", "verb": "list", "filters": {"folder": "main"}, "limit": 2})
        );
        let back: Request = serde_json::from_value(v).unwrap();
        assert_eq!(back, c.req);
    }

    #[test]
    fn refuses_bad_arguments_in_one_line() {
        for (cmd, needle) in [
            ("nope list", "unknown resource \"nope\""),
            ("groups frob", "unknown verb \"frob\" for groups"),
            (
                "dropped-messages delete x",
                "dropped-messages cannot delete",
            ),
            (
                "groups create --foo 1",
                "unknown field --foo for groups (fields: --id, --name",
            ),
            ("groups create --name", "--name needs a value"),
            ("groups get a b", "unexpected argument \"b\""),
            ("groups list --limit many", "--limit expects a number"),
            ("groups create --name a --name b", "--name given twice"),
            ("groups list --json=yes", "--json takes no value"),
        ] {
            let e = err_of(cmd);
            assert!(e.contains(needle), "{cmd}: {e}");
            assert!(!e.contains('\n'), "{cmd}: {e}");
        }
    }

    #[test]
    fn help_is_not_an_error() {
        for cmd in [
            "",
            "help",
            "--help",
            "groups",
            "groups help",
            "wirings create --help",
        ] {
            assert!(
                matches!(parse(&args(cmd)).unwrap(), Parsed::Help(_)),
                "{cmd}"
            );
        }
        let Parsed::Help(h) = parse(&args("wirings help")).unwrap() else {
            unreachable!()
        };
        assert!(
            h.contains("--engage-mode") && h.contains("pattern|mention|mention-sticky"),
            "{h}"
        );
    }
}
