//! The route table: every `google.api.http` rule (with `additional_bindings`) of every service in
//! the descriptor set, read at start, except those of methods only service principals may call
//! (see [`crate::access`]). Conflicting or invalid rules fail start-up.

use http::Method;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor, Value};

use super::template::{PathParts, Template};
use crate::access::Access;

/// Which part of the request message the HTTP body fills.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyTarget {
    None,
    All,
    Field(String),
}

/// One REST binding of one gRPC method.
#[derive(Clone, Debug)]
pub struct Route {
    pub http_method: Method,
    pub template: Template,
    pub method: MethodDescriptor,
    pub body: BodyTarget,
    pub response_body: Option<String>,
    /// The HTTP status of a success (`ironmesh.api.v1.http_success_code`, default 200).
    pub success: http::StatusCode,
    /// The body is a `google.api.HttpBody`: raw bytes of any content type, not JSON.
    pub raw_body: bool,
    /// The reply (or its `response_body` field) is a `google.api.HttpBody`: sent as raw bytes.
    pub raw_response: bool,
    /// Server streaming: the reply is a stream of messages (NDJSON or SSE over HTTP).
    pub streaming: bool,
    /// Who may call the method (`ironmesh.api.v1.access`), for the OpenAPI `security`.
    pub access: Access,
    /// The gRPC path, `/pkg.Service/Method`, made once.
    pub grpc_path: http::uri::PathAndQuery,
}

/// The well-known message that carries raw HTTP bodies.
pub const HTTP_BODY: &str = "google.api.HttpBody";

#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

fn text(rule: &DynamicMessage, field: &str) -> String {
    match rule.get_field_by_name(field).as_deref() {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

impl RouteTable {
    /// Reads every rule in `pool`.
    pub fn from_pool(pool: &DescriptorPool) -> Result<Self, String> {
        let Some(extension) = pool.get_extension_by_name("google.api.http") else {
            return Ok(Self::default());
        };
        let success_code = pool.get_extension_by_name("ironmesh.api.v1.http_success_code");
        let mut routes = Vec::new();
        for service in pool.services() {
            for method in service.methods() {
                let options = method.options();
                if !options.has_extension(&extension) {
                    continue;
                }
                // Service principals only: never reachable from the REST edge, whatever HTTP
                // rule the contract carries (so 404, and absent from OpenAPI).
                let access = Access::of(&method).map_err(|e| e.to_string())?;
                if access.internal_only() {
                    tracing::debug!(method = method.full_name(), "internal method; not routed");
                    continue;
                }
                let Value::Message(rule) = options.get_extension(&extension).into_owned() else {
                    continue;
                };
                let mut rules = vec![rule.clone()];
                if let Some(Value::List(more)) =
                    rule.get_field_by_name("additional_bindings").as_deref()
                {
                    rules.extend(more.iter().filter_map(|v| v.as_message().cloned()));
                }
                let success = match &success_code {
                    Some(ext) if options.has_extension(ext) => {
                        match options.get_extension(ext).as_i32() {
                            Some(code @ (200 | 201 | 202 | 204)) => {
                                http::StatusCode::from_u16(code as u16).expect("valid")
                            }
                            other => {
                                return Err(format!(
                                    "{}: http_success_code {other:?} is not one of 200, 201, 202, 204",
                                    method.full_name()
                                ));
                            }
                        }
                    }
                    _ => http::StatusCode::OK,
                };
                for rule in rules {
                    let mut route = route(&method, &rule)?;
                    route.success = success;
                    routes.push(route);
                }
            }
        }
        for (i, a) in routes.iter().enumerate() {
            if let Some(b) = routes[i + 1..]
                .iter()
                .find(|b| b.http_method == a.http_method && b.template.same_shape(&a.template))
            {
                return Err(format!(
                    "conflicting HTTP rules: {} {} is bound by {} and {}",
                    a.http_method,
                    a.template.text(),
                    a.method.full_name(),
                    b.method.full_name()
                ));
            }
        }
        Ok(Self { routes })
    }

    /// The route for `method` + `path` and its path bindings.
    pub fn find(&self, method: &Method, path: &str) -> Option<(&Route, Vec<(String, String)>)> {
        self.find_index(method, path)
            .map(|(index, bindings)| (&self.routes[index], bindings))
    }

    /// Like [`Self::find`], with the route's index for [`Self::get`].
    pub fn find_index(
        &self,
        method: &Method,
        path: &str,
    ) -> Option<(usize, Vec<(String, String)>)> {
        let parts = PathParts::parse(path)?;
        self.routes
            .iter()
            .enumerate()
            .filter(|(_, r)| r.http_method == method)
            .find_map(|(i, r)| {
                r.template
                    .matches_parts(&parts)
                    .map(|bindings| (i, bindings))
            })
    }

    /// The methods bound to paths like `path` (for `405` + `Allow` when another was used).
    pub fn allowed_methods(&self, path: &str) -> Vec<Method> {
        let mut methods: Vec<Method> = Vec::new();
        let Some(parts) = PathParts::parse(path) else {
            return methods;
        };
        for route in &self.routes {
            if !methods.contains(&route.http_method)
                && route.template.matches_parts(&parts).is_some()
            {
                methods.push(route.http_method.clone());
            }
        }
        methods
    }

    /// The route at `index` (from [`Self::find_index`]).
    pub fn get(&self, index: usize) -> Option<&Route> {
        self.routes.get(index)
    }

    /// Every route, in descriptor order.
    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

fn route(method: &MethodDescriptor, rule: &DynamicMessage) -> Result<Route, String> {
    let name = method.full_name();
    let mut patterns = Vec::new();
    for (verb, http) in [
        ("get", Method::GET),
        ("put", Method::PUT),
        ("post", Method::POST),
        ("delete", Method::DELETE),
        ("patch", Method::PATCH),
    ] {
        let path = text(rule, verb);
        if !path.is_empty() {
            patterns.push((http, path));
        }
    }
    if let Some(Value::Message(custom)) = rule.get_field_by_name("custom").as_deref() {
        let kind = text(custom, "kind");
        let path = text(custom, "path");
        if !kind.is_empty() {
            let http = Method::from_bytes(kind.as_bytes()).map_err(|e| format!("{name}: {e}"))?;
            patterns.push((http, path));
        }
    }
    let [(http_method, path)] = <[_; 1]>::try_from(patterns)
        .map_err(|_| format!("{name}: an HTTP rule needs exactly one pattern"))?;
    let template = Template::parse(&path).map_err(|e| format!("{name}: {e}"))?;
    let input = method.input();
    for field in template.fields() {
        check_field_path(&input, field).map_err(|e| format!("{name}: path {e}"))?;
    }
    let body = match text(rule, "body").as_str() {
        "" => BodyTarget::None,
        "*" => BodyTarget::All,
        field => {
            check_field_path(&input, field).map_err(|e| format!("{name}: body {e}"))?;
            BodyTarget::Field(field.to_owned())
        }
    };
    if method.is_client_streaming() {
        return Err(format!(
            "{name}: client-streaming methods cannot be bound to HTTP"
        ));
    }
    let raw_body = match &body {
        BodyTarget::None => false,
        BodyTarget::All => input.full_name() == HTTP_BODY,
        BodyTarget::Field(field) => {
            let kind = field_type(&input, field)
                .ok_or_else(|| format!("{name}: body `{field}` must name a message field"))?;
            kind == HTTP_BODY
        }
    };
    let response_body = Some(text(rule, "response_body")).filter(|s| !s.is_empty());
    let raw_response = match &response_body {
        Some(field) => {
            check_field_path(&method.output(), field)
                .map_err(|e| format!("{name}: response_body {e}"))?;
            let kind = field_type(&method.output(), field).ok_or_else(|| {
                format!("{name}: response_body `{field}` must name a message field")
            })?;
            kind == HTTP_BODY
        }
        None => method.output().full_name() == HTTP_BODY,
    };
    Ok(Route {
        http_method,
        template,
        method: method.clone(),
        body,
        response_body,
        success: http::StatusCode::OK,
        raw_body,
        raw_response,
        streaming: method.is_server_streaming(),
        access: Access::of(method).map_err(|e| e.to_string())?,
        grpc_path: format!("/{}/{}", method.parent_service().full_name(), method.name())
            .parse()
            .map_err(|e| format!("{name}: {e}"))?,
    })
}

/// The full name of the message type of the field at `path`, if it is a message.
fn field_type(message: &prost_reflect::MessageDescriptor, path: &str) -> Option<String> {
    let mut current = message.clone();
    let mut found = None;
    for part in path.split('.') {
        let field = current.get_field_by_name(part)?;
        found = field.kind().as_message().cloned();
        if let Some(inner) = &found {
            current = inner.clone();
        }
    }
    found.map(|m| m.full_name().to_owned())
}

fn check_field_path(message: &prost_reflect::MessageDescriptor, path: &str) -> Result<(), String> {
    let mut current = message.clone();
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let field = current
            .get_field_by_name(part)
            .ok_or_else(|| format!("field `{path}` does not exist in {}", message.full_name()))?;
        if parts.peek().is_some() {
            current = field
                .kind()
                .as_message()
                .cloned()
                .ok_or_else(|| format!("field `{path}` goes through a non-message"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
