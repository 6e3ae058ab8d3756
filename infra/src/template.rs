//! Reads template.yaml: the tables, functions, HTTP routes and authorizers the local runner needs.
//! CloudFormation intrinsics are resolved against local names (`!Ref`, `!GetAtt`, `!Sub`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_norway::Value;

use crate::BoxError;

#[derive(Debug, Clone)]
pub struct Template {
    root: Value,
    dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableDef {
    pub logical_id: String,
    pub attributes: Vec<(String, String)>,
    pub key_schema: Vec<(String, String)>,
    pub global_indexes: Vec<IndexDef>,
    pub ttl_attribute: Option<String>,
    pub stream_view_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IndexDef {
    pub name: String,
    pub key_schema: Vec<(String, String)>,
    pub projection: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FunctionDef {
    pub logical_id: String,
    /// The Cargo package (and binary) name, read from the CodeUri's Cargo.toml.
    pub binary: String,
    pub timeout_secs: u64,
    pub memory_mb: u64,
    pub environment: BTreeMap<String, String>,
    pub http_routes: Vec<HttpRoute>,
    pub stream_sources: Vec<StreamSource>,
    /// `ScheduleV2` events: (event name, the input sent to the function).
    pub schedules: Vec<(String, String)>,
}

/// A `DynamoDB` event of a function: the event source mapping the local runner plays.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSource {
    /// Logical id of the table whose stream it reads.
    pub table: String,
    pub batch_size: usize,
    pub max_retries: u32,
    pub partial_batch_responses: bool,
    /// Filter patterns (JSON); a record passes if it matches any (or there are none).
    pub filters: Vec<serde_json::Value>,
    /// Logical id of the SQS queue failed records go to.
    pub on_failure_queue: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpRoute {
    pub method: String,
    pub path: String,
    pub api: String,
    /// `None`: the API's default authorizer; `Some("NONE")`: open route.
    pub authorizer: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpApiDef {
    pub logical_id: String,
    pub default_authorizer: Option<String>,
    pub authorizers: BTreeMap<String, AuthorizerDef>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AuthorizerDef {
    /// A Lambda authorizer (`FunctionArn`).
    Lambda { function: String, identity_headers: Vec<String>, simple_responses: bool },
    /// A JWT authorizer (`JwtConfiguration`): API Gateway checks the token against the issuer.
    /// Locally there is no identity provider; the runner admits its documented dev token.
    Jwt { issuer: Value, identity_source: String },
}

/// How intrinsics resolve locally.
#[derive(Debug, Clone, Default)]
pub struct LocalNames {
    /// Prefix for physical names (tables); tests use a unique one per test.
    pub prefix: String,
    pub region: String,
    pub account: String,
    /// Parameter values overriding the template's defaults.
    pub parameters: BTreeMap<String, String>,
}

impl LocalNames {
    pub fn physical(&self, logical_id: &str) -> String {
        format!("{}{}", self.prefix, logical_id)
    }
}

impl Template {
    pub fn load(path: &Path) -> Result<Self, BoxError> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let root: Value =
            serde_norway::from_str(&text).map_err(|e| format!("{} is not valid YAML: {e}", path.display()))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(Template { root, dir })
    }

    fn resources(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.root
            .get("Resources")
            .and_then(Value::as_mapping)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter_map(|(k, v)| Some((k.as_str()?, v)))
    }

    fn of_type<'a>(&'a self, ty: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.resources().filter(move |(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty))
    }

    pub fn resource_type(&self, logical_id: &str) -> Option<&str> {
        self.resources().find(|(id, _)| *id == logical_id).and_then(|(_, r)| r.get("Type")?.as_str())
    }

    pub fn parameter_default(&self, name: &str) -> Option<String> {
        scalar(self.root.get("Parameters")?.get(name)?.get("Default")?)
    }

    /// Logical ids of the SNS topics.
    pub fn topics(&self) -> Vec<String> {
        self.logical_ids("AWS::SNS::Topic")
    }

    /// Logical ids of the SQS queues.
    pub fn queues(&self) -> Vec<String> {
        self.logical_ids("AWS::SQS::Queue")
    }

    fn logical_ids(&self, resource_type: &str) -> Vec<String> {
        self.resources()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(resource_type))
            .map(|(id, _)| id.to_owned())
            .collect()
    }

    pub fn tables(&self) -> Result<Vec<TableDef>, BoxError> {
        self.of_type("AWS::DynamoDB::Table")
            .map(|(id, r)| {
                let p = r.get("Properties").ok_or_else(|| format!("table {id} has no Properties"))?;
                let pairs = |v: Option<&Value>, a: &str, b: &str| -> Vec<(String, String)> {
                    v.and_then(Value::as_sequence)
                        .into_iter()
                        .flatten()
                        .filter_map(|e| Some((scalar(e.get(a)?)?, scalar(e.get(b)?)?)))
                        .collect()
                };
                let global_indexes = p
                    .get("GlobalSecondaryIndexes")
                    .and_then(Value::as_sequence)
                    .into_iter()
                    .flatten()
                    .filter_map(|g| {
                        Some(IndexDef {
                            name: scalar(g.get("IndexName")?)?,
                            key_schema: pairs(g.get("KeySchema"), "AttributeName", "KeyType"),
                            projection: g
                                .get("Projection")
                                .and_then(|p| p.get("ProjectionType"))
                                .and_then(scalar)
                                .unwrap_or_else(|| "ALL".into()),
                        })
                    })
                    .collect();
                let ttl = p.get("TimeToLiveSpecification");
                Ok(TableDef {
                    logical_id: id.to_owned(),
                    attributes: pairs(p.get("AttributeDefinitions"), "AttributeName", "AttributeType"),
                    key_schema: pairs(p.get("KeySchema"), "AttributeName", "KeyType"),
                    global_indexes,
                    ttl_attribute: ttl
                        .filter(|t| t.get("Enabled").and_then(Value::as_bool).unwrap_or(false))
                        .and_then(|t| scalar(t.get("AttributeName")?)),
                    stream_view_type: p.get("StreamSpecification").and_then(|s| scalar(s.get("StreamViewType")?)),
                })
            })
            .collect()
    }

    pub fn http_apis(&self) -> Vec<HttpApiDef> {
        self.of_type("AWS::Serverless::HttpApi")
            .map(|(id, r)| {
                let auth = r.get("Properties").and_then(|p| p.get("Auth"));
                let authorizers = auth
                    .and_then(|a| a.get("Authorizers"))
                    .and_then(Value::as_mapping)
                    .into_iter()
                    .flatten()
                    .filter_map(|(name, a)| {
                        if let Some(jwt) = a.get("JwtConfiguration") {
                            let identity_source = a
                                .get("IdentitySource")
                                .and_then(scalar)
                                .unwrap_or_else(|| "$request.header.Authorization".to_owned());
                            let issuer = jwt.get("issuer").cloned().unwrap_or(Value::Null);
                            return Some((name.as_str()?.to_owned(), AuthorizerDef::Jwt { issuer, identity_source }));
                        }
                        let function = a.get("FunctionArn").and_then(referenced_resource)?;
                        let identity_headers = a
                            .get("Identity")
                            .and_then(|i| i.get("Headers"))
                            .and_then(Value::as_sequence)
                            .into_iter()
                            .flatten()
                            .filter_map(scalar)
                            .collect();
                        let simple_responses = a.get("EnableSimpleResponses").and_then(Value::as_bool).unwrap_or(false);
                        Some((
                            name.as_str()?.to_owned(),
                            AuthorizerDef::Lambda { function, identity_headers, simple_responses },
                        ))
                    })
                    .collect();
                HttpApiDef {
                    logical_id: id.to_owned(),
                    default_authorizer: auth.and_then(|a| a.get("DefaultAuthorizer")).and_then(scalar),
                    authorizers,
                }
            })
            .collect()
    }

    fn function_global(&self, key: &str) -> Option<&Value> {
        self.root.get("Globals")?.get("Function")?.get(key)
    }

    pub fn functions(&self, names: &LocalNames) -> Result<Vec<FunctionDef>, BoxError> {
        self.of_type("AWS::Serverless::Function")
            .map(|(id, r)| {
                let p = r.get("Properties").ok_or_else(|| format!("function {id} has no Properties"))?;
                let prop = |k: &str| p.get(k).or_else(|| self.function_global(k));
                let code_uri =
                    p.get("CodeUri").and_then(scalar).ok_or_else(|| format!("function {id} has no CodeUri"))?;
                let binary = package_name(&self.dir.join(&code_uri))?;
                let mut environment = BTreeMap::new();
                for source in [self.function_global("Environment"), p.get("Environment")] {
                    if let Some(vars) = source.and_then(|e| e.get("Variables")).and_then(Value::as_mapping) {
                        for (k, v) in vars {
                            let k = k.as_str().ok_or("environment variable names must be strings")?;
                            // `!If [cond, x, !Ref AWS::NoValue]`: no variable, as in CloudFormation.
                            if let Some(v) = self.resolve_opt(v, names)? {
                                environment.insert(k.to_owned(), v);
                            }
                        }
                    }
                }
                let mut http_routes = Vec::new();
                let mut stream_sources = Vec::new();
                let mut schedules = Vec::new();
                for (event_name, event) in p.get("Events").and_then(Value::as_mapping).into_iter().flatten() {
                    if event.get("Type").and_then(Value::as_str) == Some("ScheduleV2") {
                        let input = event
                            .get("Properties")
                            .and_then(|ep| ep.get("Input"))
                            .and_then(scalar)
                            .unwrap_or_else(|| "{}".into());
                        schedules.push((event_name.as_str().unwrap_or_default().to_owned(), input));
                        continue;
                    }
                    if event.get("Type").and_then(Value::as_str) == Some("DynamoDB") {
                        let ep = event
                            .get("Properties")
                            .ok_or_else(|| format!("DynamoDB event of {id} has no Properties"))?;
                        let filters = ep
                            .get("FilterCriteria")
                            .and_then(|f| f.get("Filters"))
                            .and_then(Value::as_sequence)
                            .into_iter()
                            .flatten()
                            .filter_map(|f| f.get("Pattern").and_then(Value::as_str))
                            .map(|p| serde_json::from_str(p).map_err(|e| format!("filter pattern of {id}: {e}")))
                            .collect::<Result<Vec<_>, _>>()?;
                        stream_sources.push(StreamSource {
                            table: ep.get("Stream").and_then(referenced_resource).unwrap_or_default(),
                            batch_size: ep.get("BatchSize").and_then(Value::as_u64).unwrap_or(100) as usize,
                            max_retries: ep.get("MaximumRetryAttempts").and_then(Value::as_u64).unwrap_or(3) as u32,
                            partial_batch_responses: ep
                                .get("FunctionResponseTypes")
                                .and_then(Value::as_sequence)
                                .is_some_and(|t| t.iter().any(|v| v.as_str() == Some("ReportBatchItemFailures"))),
                            filters,
                            on_failure_queue: ep
                                .get("DestinationConfig")
                                .and_then(|d| d.get("OnFailure"))
                                .and_then(|o| o.get("Destination"))
                                .and_then(referenced_resource),
                        });
                        continue;
                    }
                    if event.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                        continue;
                    }
                    let ep =
                        event.get("Properties").ok_or_else(|| format!("HttpApi event of {id} has no Properties"))?;
                    http_routes.push(HttpRoute {
                        method: ep.get("Method").and_then(scalar).unwrap_or_else(|| "ANY".into()).to_ascii_uppercase(),
                        path: ep.get("Path").and_then(scalar).unwrap_or_else(|| "/".into()),
                        api: ep.get("ApiId").and_then(referenced_resource).unwrap_or_default(),
                        authorizer: ep.get("Auth").and_then(|a| a.get("Authorizer")).and_then(scalar),
                    });
                }
                Ok(FunctionDef {
                    logical_id: id.to_owned(),
                    binary,
                    timeout_secs: prop("Timeout").and_then(Value::as_u64).unwrap_or(3),
                    memory_mb: prop("MemorySize").and_then(Value::as_u64).unwrap_or(128),
                    environment,
                    http_routes,
                    stream_sources,
                    schedules,
                })
            })
            .collect()
    }

    /// Lambda's log-format settings, which become `AWS_LAMBDA_LOG_FORMAT`/`_LEVEL` in a sandbox.
    pub fn logging_env(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(cfg) = self.function_global("LoggingConfig") {
            if let Some(f) = cfg.get("LogFormat").and_then(scalar) {
                out.push(("AWS_LAMBDA_LOG_FORMAT".to_owned(), f));
            }
            if let Some(l) = cfg.get("ApplicationLogLevel").and_then(scalar) {
                out.push(("AWS_LAMBDA_LOG_LEVEL".to_owned(), l));
            }
        }
        out
    }

    /// Resolves a property value to a string, the way CloudFormation would, with local names
    /// (`AWS::NoValue` as the empty string).
    pub fn resolve(&self, v: &Value, names: &LocalNames) -> Result<String, BoxError> {
        Ok(self.resolve_opt(v, names)?.unwrap_or_default())
    }

    /// As `resolve`; `None` for `!Ref AWS::NoValue` (the property is left out).
    pub fn resolve_opt(&self, v: &Value, names: &LocalNames) -> Result<Option<String>, BoxError> {
        if let Some(s) = scalar(v) {
            return Ok(Some(s));
        }
        let (tag, arg) = intrinsic(v).ok_or_else(|| format!("cannot resolve {v:?} locally"))?;
        match tag.as_str() {
            "Ref" if arg.as_str() == Some("AWS::NoValue") => Ok(None),
            "If" => {
                let [condition, then, otherwise] = arg.as_sequence().map(Vec::as_slice).unwrap_or_default() else {
                    return Err("!If takes [Condition, ValueIfTrue, ValueIfFalse]".into());
                };
                let condition = condition.as_str().ok_or("!If names a condition")?;
                let chosen = if self.condition(condition, names)? { then } else { otherwise };
                self.resolve_opt(chosen, names)
            }
            _ => self.resolve_one(&tag, arg, names).map(Some),
        }
    }

    /// A named condition of the template, evaluated with local parameter values.
    pub fn condition(&self, name: &str, names: &LocalNames) -> Result<bool, BoxError> {
        let def = self
            .root
            .get("Conditions")
            .and_then(|c| c.get(name))
            .ok_or_else(|| format!("no condition {name} in the template"))?;
        self.evaluate(def, names)
    }

    fn evaluate(&self, v: &Value, names: &LocalNames) -> Result<bool, BoxError> {
        let (tag, arg) = intrinsic(v).ok_or_else(|| format!("cannot evaluate condition {v:?}"))?;
        let list = || arg.as_sequence().map(Vec::as_slice).unwrap_or_default();
        match tag.as_str() {
            "Equals" => match list() {
                [a, b] => Ok(self.resolve(a, names)? == self.resolve(b, names)?),
                _ => Err("!Equals takes two values".into()),
            },
            "Not" => match list() {
                [c] => Ok(!self.evaluate(c, names)?),
                _ => Err("!Not takes one condition".into()),
            },
            "And" => list().iter().try_fold(true, |all, c| Ok(all && self.evaluate(c, names)?)),
            "Or" => list().iter().try_fold(false, |any, c| Ok(any || self.evaluate(c, names)?)),
            "Condition" => self.condition(arg.as_str().ok_or("!Condition names a condition")?, names),
            other => Err(format!("condition function {other} is not supported by the local runner").into()),
        }
    }

    fn resolve_one(&self, tag: &str, arg: &Value, names: &LocalNames) -> Result<String, BoxError> {
        match tag {
            "Ref" => {
                let name = arg.as_str().ok_or("!Ref takes a name")?;
                self.ref_value(name, names)
            }
            "Join" => {
                let [delimiter, Value::Sequence(parts)] = arg.as_sequence().map(Vec::as_slice).unwrap_or_default()
                else {
                    return Err("!Join takes [delimiter, [values]]".into());
                };
                let parts: Vec<String> =
                    parts.iter().filter_map(|p| self.resolve_opt(p, names).transpose()).collect::<Result<_, _>>()?;
                Ok(parts.join(delimiter.as_str().unwrap_or_default()))
            }
            "GetAtt" => {
                let path = match arg {
                    Value::String(s) => s.clone(),
                    Value::Sequence(parts) => parts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("."),
                    _ => return Err("!GetAtt takes Resource.Attribute".into()),
                };
                Ok(self.attribute(&path, names))
            }
            "Sub" => {
                let text = arg.as_str().ok_or("only the one-argument !Sub is supported locally")?;
                let mut out = String::new();
                let mut rest = text;
                while let Some(start) = rest.find("${") {
                    out.push_str(&rest[..start]);
                    let end = rest[start..].find('}').ok_or("unclosed ${ in !Sub")? + start;
                    let name = &rest[start + 2..end];
                    out.push_str(&if name.contains('.') && !name.starts_with("AWS::") {
                        self.attribute(name, names)
                    } else {
                        self.ref_value(name, names)?
                    });
                    rest = &rest[end + 1..];
                }
                out.push_str(rest);
                Ok(out)
            }
            "FindInMap" => {
                let path: Vec<String> = match arg {
                    Value::Sequence(parts) => parts.iter().map(|p| self.resolve(p, names)).collect::<Result<_, _>>()?,
                    _ => return Err("!FindInMap takes [Map, TopKey, SecondKey]".into()),
                };
                let [map, top, second] = path.as_slice() else {
                    return Err("!FindInMap takes [Map, TopKey, SecondKey]".into());
                };
                self.root
                    .get("Mappings")
                    .and_then(|m| m.get(map.as_str()))
                    .and_then(|m| m.get(top.as_str()))
                    .and_then(|m| m.get(second.as_str()))
                    .and_then(scalar)
                    .ok_or_else(|| format!("!FindInMap [{map}, {top}, {second}]: no such mapping").into())
            }
            other => Err(format!("intrinsic {other} is not supported by the local runner").into()),
        }
    }

    fn ref_value(&self, name: &str, names: &LocalNames) -> Result<String, BoxError> {
        match name {
            "AWS::Region" => return Ok(names.region.clone()),
            "AWS::AccountId" => return Ok(names.account.clone()),
            "AWS::URLSuffix" => return Ok("amazonaws.com".into()),
            "AWS::Partition" => return Ok("aws".into()),
            "AWS::StackName" => return Ok("feedback-loop-local".into()),
            _ => {}
        }
        if let Some(v) = names.parameters.get(name) {
            return Ok(v.clone());
        }
        if self.root.get("Parameters").and_then(|p| p.get(name)).is_some() {
            return self
                .parameter_default(name)
                .ok_or_else(|| format!("parameter {name} has no default and no local value").into());
        }
        match self.resource_type(name) {
            // As in CloudFormation: !Ref of a topic is its ARN, of a table (and most else) its name.
            Some("AWS::SNS::Topic") => return Ok(self.attribute(&format!("{name}.TopicArn"), names)),
            Some(_) => return Ok(names.physical(name)),
            None => {}
        }
        Err(format!("!Ref {name}: no such parameter or resource").into())
    }

    fn attribute(&self, path: &str, names: &LocalNames) -> String {
        let (id, attr) = path.split_once('.').unwrap_or((path, "Arn"));
        let physical = names.physical(id);
        let (region, account) = (&names.region, &names.account);
        match (self.resource_type(id), attr) {
            (Some("AWS::DynamoDB::Table"), "Arn") => format!("arn:aws:dynamodb:{region}:{account}:table/{physical}"),
            (Some("AWS::Serverless::Function"), "Arn") => {
                format!("arn:aws:lambda:{region}:{account}:function:{physical}")
            }
            (Some("AWS::SNS::Topic"), "TopicArn") => format!("arn:aws:sns:{region}:{account}:{physical}"),
            _ => format!("arn:aws:local:{region}:{account}:{physical}/{attr}"),
        }
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `!Tag arg` or `{Fn::Tag: arg}` / `{Ref: arg}`.
fn intrinsic(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => Some((t.tag.to_string().trim_start_matches('!').to_owned(), &t.value)),
        Value::Mapping(m) if m.len() == 1 => {
            let (k, arg) = m.iter().next()?;
            let k = k.as_str()?;
            Some((k.strip_prefix("Fn::").unwrap_or(k).to_owned(), arg))
        }
        _ => None,
    }
}

/// The logical id behind `!Ref X` / `!GetAtt X.Arn`.
fn referenced_resource(v: &Value) -> Option<String> {
    let (tag, arg) = intrinsic(v)?;
    let s = match (tag.as_str(), arg) {
        ("Ref", Value::String(s)) => s.clone(),
        ("GetAtt", Value::String(s)) => s.split('.').next()?.to_owned(),
        ("GetAtt", Value::Sequence(p)) => p.first()?.as_str()?.to_owned(),
        _ => return None,
    };
    Some(s)
}

fn package_name(crate_dir: &Path) -> Result<String, BoxError> {
    let manifest = crate_dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    let mut in_package = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package && let Some(rest) = line.strip_prefix("name") {
            let value = rest.trim_start().trim_start_matches('=').trim().trim_matches('"');
            return Ok(value.to_owned());
        }
    }
    Err(format!("{} has no [package] name", manifest.display()).into())
}

/// The repository's template.yaml (this crate sits one level below the workspace root).
pub fn default_template_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("template.yaml")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> LocalNames {
        LocalNames {
            prefix: "x-".into(),
            region: "us-east-1".into(),
            account: "123456789012".into(),
            parameters: [("CallerKeys".to_owned(), "dev:abc".to_owned())].into(),
        }
    }

    #[test]
    fn the_repository_template_declares_the_table_the_code_expects() {
        let t = Template::load(&default_template_path()).unwrap();
        let tables = t.tables().unwrap();
        let table = tables.iter().find(|t| t.logical_id == "FeedbackTable").unwrap();
        assert_eq!(table.key_schema, vec![("pk".into(), "HASH".into()), ("sk".into(), "RANGE".into())]);
        assert_eq!(table.global_indexes[0].name, "gsi1");
        assert_eq!(table.ttl_attribute.as_deref(), Some("expires_at"));
        assert_eq!(table.stream_view_type.as_deref(), Some("NEW_AND_OLD_IMAGES"));
    }

    #[test]
    fn functions_get_their_routes_binaries_and_resolved_environment() {
        let t = Template::load(&default_template_path()).unwrap();
        let fns = t.functions(&names()).unwrap();
        let submit = fns.iter().find(|f| f.logical_id == "SubmitRatingFunction").unwrap();
        assert_eq!(submit.binary, "submit-rating");
        assert_eq!(submit.environment["TABLE_NAME"], "x-FeedbackTable");
        assert_eq!(submit.http_routes[0].method, "POST");
        assert_eq!(submit.http_routes[0].path, "/ratings");
        assert_eq!(submit.http_routes[0].api, "FeedbackApi");
        let analyze = fns.iter().find(|f| f.binary == "analyze").expect("analyze in template");
        let stream = &analyze.stream_sources[0];
        assert_eq!((stream.table.as_str(), stream.partial_batch_responses), ("FeedbackTable", true));
        assert_eq!(stream.on_failure_queue.as_deref(), Some("AnalysisFailuresQueue"));
        assert_eq!(stream.filters[0]["eventName"], serde_json::json!(["INSERT"]));
        assert_eq!((submit.timeout_secs, submit.memory_mb), (10, 128));
        let auth = fns.iter().find(|f| f.logical_id == "AuthorizeCallerFunction").unwrap();
        assert_eq!(auth.environment["CALLER_KEYS"], "dev:abc");
        let api = &t.http_apis()[0];
        assert_eq!(api.default_authorizer.as_deref(), Some("CallerKey"));
        assert_eq!(
            api.authorizers["CallerKey"],
            AuthorizerDef::Lambda {
                function: "AuthorizeCallerFunction".into(),
                identity_headers: vec!["Authorization".to_owned()],
                simple_responses: true
            }
        );
        assert!(matches!(&api.authorizers["StaffJwt"], AuthorizerDef::Jwt { identity_source, .. }
            if identity_source == "$request.header.Authorization"));
        let weekly = fns.iter().find(|f| f.binary == "weekly-priority").unwrap();
        assert_eq!(weekly.environment["AGGREGATE_SHARDS"], "8", "!FindInMap resolves");
        assert!(t.logging_env().contains(&("AWS_LAMBDA_LOG_FORMAT".to_owned(), "JSON".to_owned())));
    }

    #[test]
    fn intrinsics_resolve_to_local_names() {
        let t: Template = Template {
            root: serde_norway::from_str(
                "Parameters: {P: {Type: String, Default: d}}\nResources: {T: {Type: AWS::DynamoDB::Table}, A: {Type: AWS::SNS::Topic}}",
            )
            .unwrap(),
            dir: PathBuf::new(),
        };
        let n = names();
        let v = |s: &str| serde_norway::from_str::<Value>(s).unwrap();
        assert_eq!(t.resolve(&v("!Ref T"), &n).unwrap(), "x-T");
        assert_eq!(t.resolve(&v("!Ref P"), &n).unwrap(), "d");
        assert_eq!(t.resolve(&v("{Ref: AWS::Region}"), &n).unwrap(), "us-east-1");
        assert_eq!(t.resolve(&v("!GetAtt T.Arn"), &n).unwrap(), "arn:aws:dynamodb:us-east-1:123456789012:table/x-T");
        assert_eq!(t.resolve(&v("!Sub '/t/${T}/${AWS::Region}'"), &n).unwrap(), "/t/x-T/us-east-1");
        assert_eq!(t.resolve(&v("!Ref A"), &n).unwrap(), "arn:aws:sns:us-east-1:123456789012:x-A");
        assert!(t.resolve(&v("!Ref Nope"), &n).is_err());
        assert!(t.resolve(&v("!FindInMap [a, b, c]"), &n).is_err());
        assert!(t.resolve(&v("!Select [0, [a]]"), &n).is_err());
    }

    #[test]
    fn conditions_choose_with_local_parameter_values() {
        let t: Template = Template {
            root: serde_norway::from_str(
                "Parameters: {Domain: {Type: String, Default: ''}, Stage: {Type: String, Default: dev}}\n\
                 Conditions:\n  HasDomain: !Not [!Equals [!Ref Domain, '']]\n  \
                 IsProd: !Equals [!Ref Stage, prod]\n  Either: !Or [!Condition HasDomain, !Condition IsProd]\n\
                 Resources: {}",
            )
            .unwrap(),
            dir: PathBuf::new(),
        };
        let mut n = names();
        let v = |s: &str| serde_norway::from_str::<Value>(s).unwrap();
        let pick = v("!If [HasDomain, !Sub 'https://${Domain}', local]");
        assert_eq!(t.resolve(&pick, &n).unwrap(), "local");
        assert_eq!(t.resolve_opt(&v("!If [IsProd, x, !Ref AWS::NoValue]"), &n).unwrap(), None);
        assert!(!t.condition("Either", &n).unwrap());
        n.parameters.insert("Domain".into(), "fb.example.com".into());
        assert_eq!(t.resolve(&pick, &n).unwrap(), "https://fb.example.com");
        assert!(t.condition("Either", &n).unwrap());
        assert_eq!(t.resolve(&v("!Join ['', [a, !Ref Stage, !Ref AWS::NoValue]]"), &n).unwrap(), "adev");
        assert!(t.resolve(&v("!If [Nope, a, b]"), &n).is_err());
    }
}
